"""What every engine does to a Delta table. Operator logic is written once against narwhals frames."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

import narwhals as nw
import pyarrow as pa
from upath import UPath

__all__ = [
    "DECIMAL",
    "DEFAULT_DELETED_FILE_RETENTION_HOURS",
    "DEFAULT_LOG_RETENTION_HOURS",
    "LOCATION_TYPES",
    "TEXT_FORMATS",
    "CheckData",
    "Engine",
    "PointReader",
    "ScanPointReader",
    "SplinkBackend",
    "SplinkOptions",
    "SqlSession",
    "StateTable",
    "TableStats",
    "WriteResult",
    "commit_metadata_from_commit_info",
    "crowded_partitions",
    "interval_hours",
    "log_retention_properties",
    "merge_predicate",
    "vacuum_retention_hours",
]

DECIMAL = (18, 4)  # precision, scale of every decimal column
# Formats front-end machines use for dates and times, tried in order.
TEXT_FORMATS: dict[str, tuple[str, ...]] = {
    "datetime": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M",
                 "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"),
    "date": ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"),
}


@dataclass(frozen=True)
class WriteResult:
    """What a write did, for asset metadata."""

    version: int
    rows_written: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableStats:
    """The current snapshot of a Delta table: its version, live data files and their bytes."""

    version: int
    files: int
    bytes: int


# What Delta uses when a table does not set ``delta.deletedFileRetentionDuration`` / ``delta.logRetentionDuration``.
DEFAULT_DELETED_FILE_RETENTION_HOURS = 7 * 24
DEFAULT_LOG_RETENTION_HOURS = 30 * 24
_INTERVAL = re.compile(r"\s*(?:interval\s+)?(\d+)\s+(second|minute|hour|day|week)s?\s*")
_UNIT_HOURS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1.0, "day": 24.0, "week": 168.0}


def interval_hours(text: str | None, default: float) -> float:
    """A Delta table property interval (``interval 7 days``, ``interval 168 hours``) in hours; ``default`` when
    unset or not understood."""
    match = _INTERVAL.fullmatch((text or "").lower())
    return int(match[1]) * _UNIT_HOURS[match[2]] if match else default


def vacuum_retention_hours(retention_hours: int, properties: Mapping[str, str], enforce: bool) -> int:
    """The retention a VACUUM uses: ``retention_hours``, and while ``enforce`` never less than the table's
    ``delta.deletedFileRetentionDuration``."""
    if not enforce:
        return retention_hours
    configured = interval_hours(properties.get("delta.deletedFileRetentionDuration"),
                                DEFAULT_DELETED_FILE_RETENTION_HOURS)
    return max(retention_hours, math.ceil(configured))


def log_retention_properties(properties: Mapping[str, str], log_retention_hours: int) -> dict[str, str]:
    """The table property to set so that log cleanup keeps ``log_retention_hours`` of commits ({} if it does)."""
    configured = interval_hours(properties.get("delta.logRetentionDuration"), DEFAULT_LOG_RETENTION_HOURS)
    if configured >= log_retention_hours:
        return {}
    return {"delta.logRetentionDuration": f"interval {log_retention_hours} hours"}


def crowded_partitions(files: Iterable[Mapping[str, str | None]]) -> list[dict[str, str | None]]:
    """The partitions (``{column: value}``; ``{}`` for an unpartitioned table) holding more than one data file,
    given each live file's partition values."""
    counts = Counter(tuple(sorted(values.items())) for values in files)
    return [dict(key) for key, count in sorted(counts.items(), key=str) if count > 1]


def merge_predicate(
    keys: tuple[str, ...] | list[str],
    source: str = "s",
    target: str = "t",
    partitions: dict[str, list[str]] | None = None,
) -> str:
    """``t.k1 = s.k1 AND t.k2 = s.k2`` for a MERGE on business keys, plus ``t.p IN ('v1', …)`` literals for the
    partition values present in the source (literal values are what lets the engines prune partitions)."""
    clauses = [f"{target}.`{k}` = {source}.`{k}`" for k in keys]
    for column, values in (partitions or {}).items():
        literals = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        clauses.append(f"{target}.`{column}` IN ({literals})" if values else "FALSE")
    return " AND ".join(clauses)


def commit_metadata_from_commit_info(commit_info: Mapping[str, Any]) -> dict[str, str]:
    """The string key/values of one Delta ``commitInfo``, with a JSON-object ``userMetadata`` expanded in place.

    delta-rs writes custom metadata as top-level ``commitInfo`` fields; Spark writes it as ``userMetadata``, a JSON
    object of the key/values. This works on a ``_delta_log`` commitInfo and on an entry of delta-rs
    ``DeltaTable.history()``, so a watermark written by either engine is found by the same key.
    """
    found = {k: v for k, v in commit_info.items() if isinstance(v, str) and k != "userMetadata"}
    user = commit_info.get("userMetadata")
    if isinstance(user, str):
        try:
            decoded = json.loads(user)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            found.update({k: v for k, v in decoded.items() if isinstance(v, str)})
        else:
            found["userMetadata"] = user
    return found


# What a check session can open: a frame of the engine, an Arrow table, or a Delta table by location (a local path,
# an object-store UPath or a URI string).
CheckData = nw.LazyFrame | pa.Table | PurePath | UPath | str
LOCATION_TYPES = (PurePath, UPath, str)


class SqlSession(Protocol):
    """Tables registered in one SQL session of an engine (an in-process DuckDB connection, or a Spark session).

    SQL is written in DuckDB's dialect, the one medlake's standards generate rules in; an engine that speaks another
    translates it before running it (Spark: sqlglot plus medlake's rewrites). Close it when done."""

    def register(self, name: str, table: pa.Table) -> None:
        """``table`` as a view ``name`` of this session (replacing one of that name)."""
        ...

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query."""
        ...

    def frame(self, sql: str) -> nw.LazyFrame:
        """The rows of a query as a frame of the engine (valid after ``close``)."""
        ...

    def soda_data_source(self, name: str) -> Any:
        """This session as a Soda Core data source called ``name`` (DuckDB, or soda-sparkdf on Spark)."""
        ...

    def soda_contract(self, contract: dict[str, Any], data_source: str) -> dict[str, Any]:
        """A generated Soda contract (DuckDB SQL and types) as this session's data source ``data_source`` reads it;
        the contract passed in is not changed."""
        ...

    def close(self) -> None: ...


class StateTable(Protocol):
    """A small Delta table of state kept beside the lake (the EMPI's index, audit, review): read whole into the
    driver, written a few rows at a time."""

    path: str

    def exists(self) -> bool: ...

    def version(self) -> int | None: ...

    def read(self) -> pa.Table: ...

    def append(self, data: pa.Table, *, metadata: dict[str, str] | None = None) -> None: ...

    def upsert(
        self, data: pa.Table, key: str, *, remove: Sequence[str] = (), metadata: dict[str, str] | None = None
    ) -> None:
        """Upsert ``data`` on ``key`` and delete the rows whose ``key`` is in ``remove``, in one commit."""
        ...

    def delete(self, key: str, values: Sequence[str], *, metadata: dict[str, str] | None = None) -> None: ...

    def restore(self, version: int | None, *, metadata: dict[str, str] | None = None) -> None:
        """Go back to ``version`` (``None``: before the table had rows: delete them all)."""
        ...


@dataclass(frozen=True)
class SplinkOptions:
    """How a Splink database API is set up: DuckDB's threads and memory, Spark's lineage breaking and partitions."""

    threads: int = 2
    memory_limit: str = "2GB"
    break_lineage: str = "persist"  # SparkAPI break_lineage_method (persist|parquet|checkpoint)
    partitions: int | None = None  # SparkAPI num_partitions_on_repartition (None: Splink's default)


class SplinkBackend(Protocol):
    """A Splink database API on an engine's own connection or session, and what differs around it."""

    db_api: Any
    dialect: str  # the sqlglot dialect Splink renders for it (a saved model records it)

    def to_arrow(self, result: Any, columns: Sequence[str]) -> pa.Table:
        """The ``columns`` of a Splink result table (a ``SplinkDataFrame``)."""
        ...

    def close(self) -> None:
        """Release what the linker created (connection, temp views and their caches)."""
        ...


@runtime_checkable
class PointReader(Protocol):
    """A long-lived handle on one Delta table for point lookups (a service keeps one per table and process)."""

    def rows(self, where: Mapping[str, Iterable[Any]]) -> pa.Table:
        """The rows whose column ``c`` is one of ``where[c]``, for every ``c`` (AND); the table's current version,
        refreshed incrementally at most every ``refresh_seconds``."""
        ...


class ScanPointReader:
    """A point reader through the engine's ordinary read (engines with no cheaper handle)."""

    def __init__(self, engine: Engine, path: str) -> None:
        self.engine = engine
        self.path = path

    def rows(self, where: Mapping[str, Iterable[Any]]) -> pa.Table:
        frame = self.engine.read(self.path)
        for column, values in where.items():
            frame = frame.filter(nw.col(column).is_in(list(values)))
        return self.engine.to_arrow(frame)


@runtime_checkable
class Engine(Protocol):
    """A compute engine bound to Delta tables by path. Frames cross this boundary as narwhals frames."""

    name: str
    dialect: str  # the SQL dialect the engine runs (sqlglot's name): "duckdb" or "spark"

    def exists(self, path: str) -> bool: ...

    def read(self, path: str) -> nw.LazyFrame: ...

    def from_arrow(self, table: pa.Table) -> nw.LazyFrame: ...

    def to_arrow(self, frame: nw.LazyFrame | nw.DataFrame) -> pa.Table: ...

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """Compute once and keep, for a frame read several times (polars: collect; Spark: cache)."""
        ...

    def try_cast_text(self, frame: nw.LazyFrame, columns: dict[str, str]) -> nw.LazyFrame:
        """Type text columns (``int``, ``decimal``, ``date``, ``datetime``; formats in TEXT_FORMATS); a value that
        does not parse becomes null, and the original text is kept in ``__raw_<column>``."""
        ...

    def append(self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None) -> WriteResult: ...

    def overwrite(
        self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None
    ) -> WriteResult: ...

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
        """Upsert on ``keys``. With ``partition_by`` (columns that are a function of the keys) a new table is
        partitioned by them and the MERGE predicate names the source's partition values, so untouched partitions
        are neither read nor rewritten."""
        ...

    def version(self, path: str) -> int | None: ...

    def point_reader(self, path: str, *, refresh_seconds: float = 1.0) -> PointReader:
        """A handle for repeated point lookups on the table at ``path`` (raises TableNotFoundError if absent)."""
        ...

    def commit_metadata(self, path: str) -> dict[str, str]: ...

    def row_count(self, path: str) -> int: ...

    # Table maintenance. ``metadata`` is written into every commit these make, so that the custom metadata of the
    # newest commit (a DWD watermark) is the same after maintenance as before.

    def table_stats(self, path: str) -> TableStats: ...

    def optimize(self, path: str, *, zorder: tuple[str, ...] = (), metadata: dict[str, str] | None = None) -> None:
        """Compact small files. With ``zorder``, Z-order (which also compacts) every partition holding more than one
        file by those columns; partitions already in one file are left alone."""
        ...

    def cluster(self, path: str, columns: tuple[str, ...], *, row_group_rows: int,
                metadata: dict[str, str] | None = None) -> None:
        """Rewrite the whole table Z-ordered by ``columns`` (every partition, even one already in one file) with
        row groups of at most ``row_group_rows`` rows, so a point lookup on ``columns`` reads few, small row
        groups. (Spark sizes row groups by bytes, ``parquet.block.size``: there ``row_group_rows`` is not applied.)"""
        ...

    def vacuum(
        self,
        path: str,
        *,
        retention_hours: int,
        dry_run: bool,
        enforce_retention_duration: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> list[str]:
        """Delete (``dry_run``: only list) the data files that no version committed in the last ``retention_hours``
        reads. While ``enforce_retention_duration``, the retention is never shorter than the table's
        ``delta.deletedFileRetentionDuration`` (default 7 days); only tests turn that off."""
        ...

    def checkpoint(self, path: str, *, log_retention_hours: int, metadata: dict[str, str] | None = None) -> None:
        """Write a checkpoint of the current version and clean up expired log files. The table's
        ``delta.logRetentionDuration`` is first raised to ``log_retention_hours`` if shorter, so no commit inside
        that window is cleaned up."""
        ...

    # Capabilities operators use, so that no domain module dispatches on the engine.

    def sql(self, query: str, frames: Mapping[str, nw.LazyFrame | pa.Table]) -> nw.LazyFrame:
        """Run ``query`` (DuckDB's dialect, see :class:`SqlSession`) over ``frames`` registered under their names;
        the result is a frame of this engine."""
        ...

    def hash_columns(self, frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
        """``frame`` with ``columns`` replaced by the lowercase hex SHA-256 of the UTF-8 bytes of salt ‖ the value's
        text (nulls stay null), computed where the frame lives; identical on every engine, so hashes join."""
        ...

    def check_session(
        self, table: str, data: CheckData, *, batch_id: str | None = None, drop: Sequence[str] = ()
    ) -> SqlSession:
        """A SQL session where ``data`` (without the ``drop`` columns, filtered to ``_batch_id == batch_id``) is the
        view ``main.<table>``, read once for the several passes of a check run (Soda, counts, flagging)."""
        ...

    def splink(self, options: SplinkOptions) -> SplinkBackend:
        """A Splink database API on this engine's connection or session (DuckDB in process, or the SparkSession)."""
        ...

    def state_table(self, path: str) -> StateTable:
        """The small state table at ``path`` (see :class:`StateTable`)."""
        ...
