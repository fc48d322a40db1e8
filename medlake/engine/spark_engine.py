"""The cluster engine: PySpark DataFrames and delta-spark writes and MERGE, same semantics as ``PolarsEngine``.

Both engines read and write the same Delta tables. Choices that make the round trip lossless:

- Date/time columns are wall-clock ``TIMESTAMP_NTZ`` on both sides (polars ``Datetime("us")`` ↔ delta-rs
  ``timestamp_ntz`` ↔ Spark ``TIMESTAMP_NTZ``, see :mod:`medlake.engine.spark_session`); ``Decimal(18,4)``,
  ``Date``, ``Int64`` and strings map one to one.
- Custom commit metadata (watermarks) is written by Spark as the commit's ``userMetadata``: a JSON object of
  the key/values. delta-rs writes the same key/values as top-level ``commitInfo`` fields. Both engines' readers
  must decode both forms; :func:`medlake.engine.base.commit_metadata_from_commit_info` does that for one
  ``commitInfo`` (re-exported here).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import narwhals as nw
import pyarrow as pa

from medlake.config import Settings
from medlake.engine.base import (
    DECIMAL,
    TEXT_FORMATS,
    CheckData,
    ScanPointReader,
    SplinkOptions,
    TableStats,
    WriteResult,
    commit_metadata_from_commit_info,
    crowded_partitions,
    log_retention_properties,
    merge_predicate,
    vacuum_retention_hours,
)
from medlake.errors import MedlakeError, MissingBackendError, TableNotFoundError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from medlake.engine.delta_state import DeltaStateTable
    from medlake.engine.spark_linkage import SparkSplink
    from medlake.engine.spark_sql import SparkCheckSession

__all__ = [
    "USER_METADATA_CONF",
    "SparkEngine",
    "SparkWriteError",
    "commit_metadata_from_commit_info",
    "java_datetime_pattern",
]

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# The session conf carrying a MERGE's userMetadata is shared by every thread of the driver, so writes from one
# process are serialized: otherwise a concurrent write would be committed with another write's watermark.
_COMMIT_CONF_LOCK = threading.Lock()


class SparkWriteError(MedlakeError):
    """delta-spark refused a write or MERGE (schema mismatch, duplicate source keys, concurrent commit)."""


_JAVA_FIELDS = {"%Y": ("yyyy", "yyyy"), "%m": ("M", "MM"), "%d": ("d", "dd"), "%H": ("H", "HH"), "%M": ("m", "mm"),
                "%S": ("s", "ss")}
_DIRECTIVE = re.compile(r"%[YmdHMS]")
# ASCII numbers only: Spark also casts full-width digits ('１２'), polars does not.
_NUMBER = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER = r"^[+-]?[0-9]+$"


def java_datetime_pattern(strptime_format: str) -> str:
    """A ``TEXT_FORMATS`` strptime format as a Spark datetime pattern that parses what polars/chrono parses:
    unpadded fields where a separator follows (``2024-1-2``), fixed widths where fields touch (``%Y%m%d``)."""
    parts = [p for p in re.split(r"(%[YmdHMS])", strptime_format) if p]
    out = []
    for i, part in enumerate(parts):
        if _DIRECTIVE.fullmatch(part):
            touching = any(0 <= j < len(parts) and _DIRECTIVE.fullmatch(parts[j]) for j in (i - 1, i + 1))
            out.append(_JAVA_FIELDS[part][touching])
        else:
            out.append("".join(f"'{c}'" if c.isalpha() else c for c in part))
    return "".join(out)


def _spark_parsers() -> dict[str, Callable[[Any], Any]]:
    """Tolerant Spark parsers per spec dtype, the counterparts of PolarsEngine's: null when a value does not parse
    (``try_*`` functions, so ANSI mode stays on for everything else)."""
    from pyspark.sql import functions as F

    def temporal(kind: str) -> Callable[[Any], Any]:
        def parse(text: Any) -> Any:
            patterns = [F.lit(java_datetime_pattern(f)) for f in TEXT_FORMATS[kind]]
            parsed = F.coalesce(*[F.try_to_timestamp(text, pattern) for pattern in patterns])
            return parsed.cast("date" if kind == "date" else "timestamp_ntz")

        return parse

    return {
        "int": lambda text: F.when(text.rlike(_INTEGER), text.try_cast("bigint")),
        "decimal": lambda text: F.when(text.rlike(_NUMBER), text.try_cast(f"decimal({DECIMAL[0]},{DECIMAL[1]})")),
        "date": temporal("date"),
        "datetime": temporal("datetime"),
    }


def _partition_values(file_uri: str) -> dict[str, str | None]:
    """``{column: value}`` from the Hive-style folders of a data file's URI (``…/col=value/part-….parquet``)."""
    folders = urlparse(file_uri).path.split("/")[:-1]
    pairs = (unquote(folder).split("=", 1) for folder in folders if "=" in folder)
    return {column: None if value == _HIVE_NULL else value for column, value in pairs}


def _user_metadata(metadata: Mapping[str, str] | None) -> str | None:
    return json.dumps(dict(metadata), ensure_ascii=False, sort_keys=True) if metadata else None


class SparkEngine:
    """Delta tables by path through delta-spark; frames are narwhals frames over PySpark DataFrames."""

    name = "spark"
    dialect = "spark"  # the SQL it runs: Spark SQL (medlake's DuckDB-dialect SQL is transpiled)

    def __init__(
        self,
        spark: SparkSession | None = None,
        cfg: Settings | None = None,
        *,
        session: Callable[[], SparkSession] | None = None,
    ) -> None:
        """``spark``: a started session; else ``session`` (e.g. a dagster-pyspark resource's) is called on first
        use; else :func:`medlake.engine.spark_session.get_spark` starts one from ``cfg``."""
        self._spark = spark
        self._cfg = cfg
        self._session = session

    @property
    def spark(self) -> SparkSession:
        """The session, started on first use (so building Dagster definitions never starts a JVM)."""
        if self._spark is None:
            from medlake.engine.spark_session import get_spark

            self._spark = self._session() if self._session is not None else get_spark(self._cfg)
        return self._spark

    def _delta(self) -> Any:
        try:
            from delta.tables import DeltaTable
        except ImportError:
            raise MissingBackendError("delta-spark", "spark") from None
        return DeltaTable

    def _table(self, path: str) -> Any:
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return self._delta().forPath(self.spark, str(path))

    def exists(self, path: str) -> bool:
        return bool(self._delta().isDeltaTable(self.spark, str(path)))

    def point_reader(self, path: str, *, refresh_seconds: float = 1.0) -> ScanPointReader:
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return ScanPointReader(self, path)  # Spark reads the newest version on every lookup

    def read(self, path: str) -> nw.LazyFrame:
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return nw.from_native(self.spark.read.format("delta").load(str(path)))

    def from_arrow(self, table: pa.Table) -> nw.LazyFrame:
        return nw.from_native(self.spark.createDataFrame(table))

    def to_arrow(self, frame: nw.LazyFrame | nw.DataFrame) -> pa.Table:
        native = nw.to_native(frame)
        if hasattr(native, "toArrow"):  # a PySpark DataFrame (classic or Connect)
            return native.toArrow()
        eager = frame.collect() if isinstance(frame, nw.LazyFrame) else frame
        return eager.to_arrow()

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """Cache the frame in the executors (computed on first use) so that it is read and typed once."""
        return nw.from_native(self._to_spark(frame).cache())

    def try_cast_text(self, frame: nw.LazyFrame, columns: dict[str, str]) -> nw.LazyFrame:
        """Same semantics as ``PolarsEngine.try_cast_text``: trimmed text typed tolerantly, raw text kept."""
        parsers = _spark_parsers()
        stripped = frame.with_columns(
            *[nw.col(name).alias(f"__raw_{name}") for name in columns],
            *[nw.col(name).str.strip_chars() for name in columns],  # narwhals' strip, as on polars
        )
        native = self._to_spark(stripped)
        return nw.from_native(native.withColumns({
            name: parsers[dtype](native[name]) for name, dtype in columns.items()
        }))

    def _to_spark(self, frame: nw.LazyFrame | nw.DataFrame) -> SparkDataFrame:
        """A Spark DataFrame for any narwhals frame (a polars frame is handed over through Arrow)."""
        native = nw.to_native(frame)
        return native if hasattr(native, "toArrow") else self.spark.createDataFrame(self.to_arrow(frame))

    def _last_commit(self, path: str) -> dict[str, Any]:
        rows = self._table(path).history(1).collect()
        return rows[0].asDict(recursive=True) if rows else {}

    def _committed(self, path: str) -> tuple[int, dict[str, int]]:
        """Version and numeric ``operationMetrics`` of the newest commit."""
        commit = self._last_commit(path)
        metrics = {k: int(v) for k, v in (commit.get("operationMetrics") or {}).items() if str(v).isdigit()}
        return int(commit["version"]), metrics

    def _write(
        self, frame: nw.LazyFrame, path: str, mode: str, metadata: dict[str, str] | None,
        partition_by: tuple[str, ...] = (),
    ) -> WriteResult:
        writer = self._to_spark(frame).write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer = writer.option("mergeSchema" if mode == "append" else "overwriteSchema", "true")
        user = _user_metadata(metadata)
        if user:
            writer = writer.option("userMetadata", user)
        try:
            with _COMMIT_CONF_LOCK:
                writer.save(str(path))
                version, metrics = self._committed(path)
        except Exception as exc:  # Spark raises AnalysisException, Py4JJavaError, ... for one failed write
            raise SparkWriteError(f"{mode} to {path} failed: {exc}") from exc
        return WriteResult(version, metrics.get("numOutputRows", 0), metrics=metrics)

    def append(self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None) -> WriteResult:
        return self._write(frame, path, "append", metadata)

    def overwrite(
        self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None
    ) -> WriteResult:
        return self._write(frame, path, "overwrite", metadata)

    @contextmanager
    def _commit_user_metadata(self, metadata: dict[str, str] | None) -> Iterator[None]:
        """MERGE has no writer options: ``userMetadata`` goes through the session conf, for this commit only."""
        user = _user_metadata(metadata)
        with _COMMIT_CONF_LOCK:
            if user:
                self.spark.conf.set(USER_METADATA_CONF, user)
            try:
                yield
            finally:
                if user:
                    self.spark.conf.unset(USER_METADATA_CONF)

    def merge(
        self,
        frame: nw.LazyFrame,
        path: str,
        *,
        keys: tuple[str, ...],
        version_column: str | None = None,
        metadata: dict[str, str] | None = None,
        partition_by: tuple[str, ...] = (),
    ) -> WriteResult:
        """Upsert on ``keys``: a matched row is replaced when the source's ``version_column`` is not older."""
        if not self.exists(path):
            result = self._write(frame, path, "append", metadata, partition_by=partition_by)
            return WriteResult(result.version, result.rows_written, rows_inserted=result.rows_written,
                               metrics=result.metrics)
        update_when = f"s.`{version_column}` >= t.`{version_column}`" if version_column else None
        source = self._to_spark(frame)
        merger = (
            self._table(path).alias("t").merge(source.alias("s"), merge_predicate(keys, partitions={
                c: [r[0] for r in source.select(c).distinct().collect() if r[0] is not None] for c in partition_by
            }))
            .whenMatchedUpdateAll(condition=update_when)
            .whenNotMatchedInsertAll()
        )
        try:
            with self._commit_user_metadata(metadata):
                merger.execute()
                version, metrics = self._committed(path)
        except Exception as exc:  # e.g. DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE
            raise SparkWriteError(f"MERGE into {path} on {', '.join(keys)} failed: {exc}") from exc
        return WriteResult(
            version=version,
            rows_written=metrics.get("numSourceRows", 0),
            rows_inserted=metrics.get("numTargetRowsInserted", 0),
            rows_updated=metrics.get("numTargetRowsUpdated", 0),
            metrics=metrics,
        )

    def version(self, path: str) -> int | None:
        return int(self._last_commit(path)["version"]) if self.exists(path) else None

    def commit_metadata(self, path: str) -> dict[str, str]:
        """Custom metadata of the newest commit, whichever engine wrote it (read from the raw ``_delta_log``)."""
        if not self.exists(path):
            return {}
        log_file = f"{str(path).rstrip('/')}/_delta_log/{self.version(path):020d}.json"
        for row in self.spark.read.text(log_file).collect():
            action = json.loads(row.value)
            if "commitInfo" in action:
                return commit_metadata_from_commit_info(action["commitInfo"])
        return {}

    def row_count(self, path: str) -> int:
        if not self.exists(path):
            return 0
        return int(self.spark.read.format("delta").load(str(path)).count())

    def _detail(self, path: str) -> dict[str, Any]:
        return self._table(path).detail().first().asDict(recursive=True)

    def _sql_table(self, path: str) -> str:
        return "delta.`" + str(path).replace("`", "``") + "`"

    def table_stats(self, path: str) -> TableStats:
        detail = self._detail(path)
        return TableStats(int(self.version(path) or 0), int(detail["numFiles"]), int(detail["sizeInBytes"]))

    def optimize(self, path: str, *, zorder: tuple[str, ...] = (), metadata: dict[str, str] | None = None) -> None:
        table = self._table(path)
        with self._commit_user_metadata(metadata):
            if not zorder:
                table.optimize().executeCompaction()
                return
            files = self.spark.read.format("delta").load(str(path)).inputFiles()
            for partition in crowded_partitions(_partition_values(f) for f in files):
                builder = table.optimize()
                if partition:
                    builder = builder.where(" AND ".join(
                        f"`{c}` IS NULL" if v is None else f"`{c}` = '" + v.replace("'", "''") + "'"
                        for c, v in partition.items()
                    ))
                builder.executeZOrderBy(*zorder)

    def cluster(self, path: str, columns: tuple[str, ...], *, row_group_rows: int,
                metadata: dict[str, str] | None = None) -> None:
        with self._commit_user_metadata(metadata):
            self._table(path).optimize().executeZOrderBy(*columns)  # row groups sized by parquet.block.size

    def vacuum(
        self,
        path: str,
        *,
        retention_hours: int,
        dry_run: bool,
        enforce_retention_duration: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> list[str]:
        """VACUUM through SQL (DRY RUN lists the files; a real run is preceded by one, to report what it deletes)."""
        hours = vacuum_retention_hours(retention_hours, self._detail(path)["properties"] or {},
                                       enforce_retention_duration)
        statement = f"VACUUM {self._sql_table(path)} RETAIN {hours} HOURS"
        with self._commit_user_metadata(metadata):
            if not enforce_retention_duration:
                self.spark.conf.set(_RETENTION_CHECK_CONF, "false")
            try:
                files = [str(row[0]) for row in self.spark.sql(statement + " DRY RUN").collect()]
                if files and not dry_run:
                    self.spark.sql(statement).collect()
            finally:
                if not enforce_retention_duration:
                    self.spark.conf.unset(_RETENTION_CHECK_CONF)
        return files

    def checkpoint(self, path: str, *, log_retention_hours: int, metadata: dict[str, str] | None = None) -> None:
        """Set the log retention if shorter than asked, then checkpoint through the JVM ``DeltaLog`` (delta-spark
        has no Python call for it), which also cleans up expired log files."""
        properties = log_retention_properties(self._detail(path)["properties"] or {}, log_retention_hours)
        with self._commit_user_metadata(metadata):
            if properties:
                assignments = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
                self.spark.sql(f"ALTER TABLE {self._sql_table(path)} SET TBLPROPERTIES ({assignments})")
            jvm = self.spark._jvm  # type: ignore[attr-defined]
            jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, str(path)).checkpoint()

    # ------------------------------------------------------------------ capabilities (SQL, hashing, linkage, state)

    def sql(self, query: str, frames: Mapping[str, nw.LazyFrame | pa.Table]) -> nw.LazyFrame:
        """``query`` (DuckDB's dialect, transpiled) over ``frames`` as temp views of the engine's session, held only
        while the query is planned."""
        from medlake.engine.spark_sql import shared_views, spark_sql

        natives = {name: self._to_spark(frame if isinstance(frame, nw.LazyFrame) else self.from_arrow(frame))
                   for name, frame in frames.items()}
        with shared_views(self.spark, natives):
            return nw.from_native(self.spark.sql(spark_sql(query)))

    def hash_columns(self, frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
        """``sha2(concat(salt, value), 256)`` on the executors."""
        if not columns:
            return frame
        from pyspark.sql import functions as F

        native = self._to_spark(frame)
        return nw.from_native(native.withColumns({
            c: F.sha2(F.concat(F.lit(salt), native[c].cast("string")), 256) for c in columns
        }))

    def check_session(
        self, table: str, data: CheckData, *, batch_id: str | None = None, drop: Sequence[str] = ()
    ) -> SparkCheckSession:
        """The data as a cached temp view: a DataFrame in its own session, anything else in a new session."""
        from medlake.engine.spark_sql import SparkCheckSession

        native = nw.to_native(data) if isinstance(data, nw.LazyFrame) else data
        if isinstance(data, nw.LazyFrame) and not hasattr(native, "toArrow"):
            native = self.to_arrow(data)  # a polars frame: handed over as Arrow
        return SparkCheckSession(self.spark, table, native, batch_id, drop)

    def splink(self, options: SplinkOptions) -> SparkSplink:
        from medlake.engine.spark_linkage import SparkSplink

        return SparkSplink(self.spark, options)

    def state_table(self, path: str) -> DeltaStateTable:
        """Through delta-rs in the driver, as on the embedded engine: the state is small and read whole."""
        from medlake.engine.delta_state import DeltaStateTable

        return DeltaStateTable(path)
