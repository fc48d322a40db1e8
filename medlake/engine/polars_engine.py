"""The embedded engine: polars frames, delta-rs (``deltalake``) writes and MERGE. No server to start."""

from __future__ import annotations

import errno
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import narwhals as nw
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as _DeltaTableNotFound

from medlake.engine.base import (
    DECIMAL,
    LOCATION_TYPES,
    TEXT_FORMATS,
    CheckData,
    SplinkOptions,
    TableStats,
    WriteResult,
    commit_metadata_from_commit_info,
    crowded_partitions,
    log_retention_properties,
    merge_predicate,
    vacuum_retention_hours,
)
from medlake.errors import CommitConflictError, LakeWriteError, TableNotFoundError

if TYPE_CHECKING:
    from medlake.engine.delta_state import DeltaStateTable
    from medlake.engine.duckdb_linkage import DuckDBSplink
    from medlake.engine.duckdb_sql import DuckDBSession

__all__ = ["COMMIT_ATTEMPTS", "PolarsEngine", "commit_with_retry"]
__all__ = ["COMMIT_ATTEMPTS", "DeltaPointReader", "PolarsEngine", "commit_with_retry"]

COMMIT_ATTEMPTS = 8
_T = TypeVar("_T")


def commit_with_retry(path: str, write: Callable[[], _T]) -> _T:
    """Run ``write`` (one read-and-commit of the Delta table at ``path``) again on the newer table version when
    delta-rs reports a conflicting concurrent commit (``CommitFailedError``: nothing of the attempt was committed).
    An append, overwrite or MERGE computed afresh on the new version is correct, so a conflict costs time, not
    rows. Gives up with ``CommitConflictError`` after ``COMMIT_ATTEMPTS`` attempts."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return write()
        except CommitFailedError as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise CommitConflictError(
                    f"{path}: commit still conflicting with concurrent writers after {attempt} attempts: {exc}"
                ) from exc
            time.sleep(random.uniform(0.02, 0.1) * attempt)  # back off; jitter so racing writers drift apart
    raise AssertionError("unreachable")


def _parse_temporal(kind: str) -> Callable[[pl.Expr], pl.Expr]:
    dtype = pl.Datetime("us") if kind == "datetime" else pl.Date()

    def parse(text: pl.Expr) -> pl.Expr:
        return pl.coalesce([text.str.strptime(dtype, fmt, strict=False, exact=True) for fmt in TEXT_FORMATS[kind]])

    return parse


_PARSERS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "int": lambda text: text.cast(pl.Int64, strict=False),
    "decimal": lambda text: text.cast(pl.Decimal(*DECIMAL), strict=False),
    "date": _parse_temporal("date"),
    "datetime": _parse_temporal("datetime"),
}


def _split_new_partitions(
    table: DeltaTable, data: pa.Table, partition_by: tuple[str, ...]
) -> tuple[pa.Table | None, pa.Table]:
    """Rows of partitions the target does not have yet (read from the log, no data scanned) and the rest.

    Partition columns are a function of the keys, so no key of a new partition exists in the target."""
    if len(partition_by) != 1 or data.num_rows == 0:
        return None, data
    column = partition_by[0]
    existing = pa.table(table.get_add_actions(flatten=True)).column(f"partition.{column}")
    known = pc.is_in(data.column(column), value_set=pc.unique(existing.cast(pa.string())))
    fresh = data.filter(pc.invert(known))
    return (fresh if fresh.num_rows else None), data.filter(known)


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _cause(number: int) -> str:
    return f"{os.strerror(number)} ({errno.errorcode.get(number, f'errno {number}')})"


@contextmanager
def _writing(path: str) -> Iterator[None]:
    """Filesystem failures of a write (delta-rs reports them as ``DeltaError`` ending in ``(os error N)``) become
    one ``LakeWriteError`` naming the table and the cause. delta-rs commits a version only after its data files are
    written, so the table is still at its last committed version."""
    try:
        yield
    except OSError as exc:
        raise LakeWriteError(str(path), _cause(exc.errno) if exc.errno else str(exc)) from exc
    except DeltaError as exc:
        found = _OS_ERROR.search(str(exc))
        if found is None:
            raise
        raise LakeWriteError(str(path), _cause(int(found.group(1)))) from exc


def _commit(metadata: dict[str, str] | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata=metadata) if metadata else None


class DeltaPointReader:
    """One delta-rs table handle kept open: brought up to date with ``update_incremental`` (reads only the new log
    entries) at most every ``refresh_seconds``; lookups filter a pyarrow dataset, so files and row groups whose
    statistics exclude the keys are skipped (hence Z-order / sort on the lookup key and small row groups)."""

    def __init__(self, table: DeltaTable, refresh_seconds: float) -> None:
        self._table = table
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._dataset = table.to_pyarrow_dataset()

    def _current(self) -> ds.Dataset:
        with self._lock:
            if time.monotonic() - self._checked >= self._refresh_seconds:
                before = self._table.version()
                self._table.update_incremental()
                if self._table.version() != before:
                    self._dataset = self._table.to_pyarrow_dataset()
                self._checked = time.monotonic()
            return self._dataset

    def rows(self, where: Mapping[str, Iterable[Any]]) -> pa.Table:
        dataset = self._current()
        condition = None
        for column, values in where.items():
            term = ds.field(column).isin(pa.array(list(values), type=dataset.schema.field(column).type))
            condition = term if condition is None else condition & term
        return dataset.to_table(filter=condition)


class PolarsEngine:
    name = "polars"
    dialect = "duckdb"  # the SQL it runs: DuckDB, in process, over Arrow

    def point_reader(self, path: str, *, refresh_seconds: float = 1.0) -> DeltaPointReader:
        return DeltaPointReader(self._table(path), refresh_seconds)

    def exists(self, path: str) -> bool:
        return DeltaTable.is_deltatable(str(path))

    def _table(self, path: str) -> DeltaTable:
        try:
            return DeltaTable(str(path))
        except _DeltaTableNotFound:
            raise TableNotFoundError(f"no Delta table at {path}") from None

    def read(self, path: str) -> nw.LazyFrame:
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return nw.from_native(pl.scan_delta(str(path)))

    def from_arrow(self, table: pa.Table) -> nw.LazyFrame:
        return nw.from_native(pl.from_arrow(table).lazy())  # type: ignore[union-attr]

    def to_arrow(self, frame: nw.LazyFrame | nw.DataFrame) -> pa.Table:
        native = nw.to_native(frame)
        if isinstance(native, pl.LazyFrame):
            native = native.collect()
        return native.to_arrow()

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        native = nw.to_native(frame)
        return nw.from_native(native.collect().lazy() if isinstance(native, pl.LazyFrame) else native.lazy())

    def try_cast_text(self, frame: nw.LazyFrame, columns: dict[str, str]) -> nw.LazyFrame:
        native = nw.to_native(frame)
        exprs: list[pl.Expr] = []
        for name, dtype in columns.items():
            text = pl.col(name).str.strip_chars()
            exprs.append(pl.col(name).alias(f"__raw_{name}"))
            exprs.append(_PARSERS[dtype](text).alias(name))
        return nw.from_native(native.with_columns(exprs))

    def _write(self, frame: nw.LazyFrame, path: str, mode: str, metadata: dict[str, str] | None) -> WriteResult:
        data = self.to_arrow(frame)
        with _writing(path):
            commit_with_retry(str(path), lambda: write_deltalake(
                str(path), data, mode=mode, schema_mode="merge" if mode == "append" else "overwrite",
                commit_properties=_commit(metadata),
            ))
        return WriteResult(version=self._table(path).version(), rows_written=data.num_rows)

    def append(self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None) -> WriteResult:
        return self._write(frame, path, "append", metadata)

    def overwrite(
        self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None
    ) -> WriteResult:
        return self._write(frame, path, "overwrite", metadata)

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
        """Upsert on ``keys``: a matched row is replaced when the source's ``version_column`` is not older.
        A MERGE that conflicts with a concurrent commit is run again on the new version (``commit_with_retry``)."""
        data = self.to_arrow(frame)
        with _writing(path):
            return commit_with_retry(str(path), lambda: self._merge(data, path, keys, version_column, metadata,
                                                                    partition_by))

    def _merge(
        self, data: pa.Table, path: str, keys: tuple[str, ...], version_column: str | None,
        metadata: dict[str, str] | None, partition_by: tuple[str, ...],
    ) -> WriteResult:
        if not self.exists(path):
            write_deltalake(str(path), data, mode="append", commit_properties=_commit(metadata),
                            partition_by=list(partition_by) or None)
            return WriteResult(self._table(path).version(), data.num_rows, rows_inserted=data.num_rows)
        if data.num_rows == 0:  # delta-rs commits nothing for an empty MERGE: commit an empty append instead, so
            # the metadata (a watermark moved past rows that were all quarantined) is not lost, as on Spark
            empty = pl.scan_delta(str(path)).head(0).collect().to_arrow()
            write_deltalake(str(path), empty, mode="append", commit_properties=_commit(metadata))
            return WriteResult(self._table(path).version())
        fresh, data = _split_new_partitions(self._table(path), data, partition_by)
        if fresh is not None and data.num_rows == 0:
            written = self._write(self.from_arrow(fresh), path, "append", metadata)
            return WriteResult(written.version, written.rows_written, rows_inserted=written.rows_written)
        appended = 0
        if fresh is not None:  # partitions the table does not have yet hold no existing key: append them
            appended = self._write(self.from_arrow(fresh), path, "append", None).rows_written
        update_when = f"s.`{version_column}` >= t.`{version_column}`" if version_column else None
        merger = self._table(path).merge(
            source=data,
            predicate=merge_predicate(keys, partitions={
                c: pc.unique(data.column(c)).drop_null().to_pylist() for c in partition_by
            }),
            source_alias="s",
            target_alias="t",
            commit_properties=_commit(metadata),
        )
        metrics: dict[str, Any] = (
            merger.when_matched_update_all(predicate=update_when).when_not_matched_insert_all().execute()
        )
        return WriteResult(
            version=self._table(path).version(),
            rows_written=data.num_rows + appended,
            rows_inserted=int(metrics.get("num_target_rows_inserted", 0)) + appended,
            rows_updated=int(metrics.get("num_target_rows_updated", 0)),
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        )

    def version(self, path: str) -> int | None:
        return self._table(path).version() if self.exists(path) else None

    def commit_metadata(self, path: str) -> dict[str, str]:
        """Custom metadata of the newest commit (where watermarks are kept atomically with the data), whichever
        engine wrote it (delta-rs: top-level commitInfo fields; Spark: the ``userMetadata`` JSON)."""
        if not self.exists(path):
            return {}
        history = self._table(path).history(1)
        return commit_metadata_from_commit_info(history[0]) if history else {}

    def row_count(self, path: str) -> int:
        if not self.exists(path):
            return 0
        return int(pl.scan_delta(str(path)).select(pl.len()).collect().item())

    def table_stats(self, path: str) -> TableStats:
        table = self._table(path)
        sizes = pa.table(table.get_add_actions(flatten=True)).column("size_bytes")
        return TableStats(table.version(), len(sizes), int(pc.sum(sizes).as_py() or 0))

    def optimize(self, path: str, *, zorder: tuple[str, ...] = (), metadata: dict[str, str] | None = None) -> None:
        table = self._table(path)
        if not zorder:
            table.optimize.compact(commit_properties=_commit(metadata))
            return
        actions = pa.table(table.get_add_actions(flatten=True))
        columns = [c for c in actions.column_names if c.startswith("partition.")]
        values = actions.select(columns).rename_columns([c.removeprefix("partition.") for c in columns])
        for partition in crowded_partitions(values.to_pylist()):
            filters = [(column, "=", value) for column, value in partition.items()] or None
            table.optimize.z_order(list(zorder), partition_filters=filters, commit_properties=_commit(metadata))

    def cluster(self, path: str, columns: tuple[str, ...], *, row_group_rows: int,
                metadata: dict[str, str] | None = None) -> None:
        self._table(path).optimize.z_order(list(columns), writer_properties=WriterProperties(
            max_row_group_size=row_group_rows), commit_properties=_commit(metadata))

    def vacuum(
        self,
        path: str,
        *,
        retention_hours: int,
        dry_run: bool,
        enforce_retention_duration: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> list[str]:
        table = self._table(path)
        retention_hours = vacuum_retention_hours(retention_hours, table.metadata().configuration,
                                                 enforce_retention_duration)
        return table.vacuum(retention_hours=retention_hours, dry_run=dry_run,
                            enforce_retention_duration=enforce_retention_duration,
                            commit_properties=_commit(metadata))

    def checkpoint(self, path: str, *, log_retention_hours: int, metadata: dict[str, str] | None = None) -> None:
        table = self._table(path)
        properties = log_retention_properties(table.metadata().configuration, log_retention_hours)
        if properties:
            table.alter.set_table_properties(properties, commit_properties=_commit(metadata))
            table = self._table(path)
        table.create_checkpoint()
        table.cleanup_metadata()

    # ------------------------------------------------------------------ capabilities (SQL, hashing, linkage, state)

    def _arrow_of(self, data: nw.LazyFrame | pa.Table) -> pa.Table:
        return data if isinstance(data, pa.Table) else self.to_arrow(data)

    def sql(self, query: str, frames: Mapping[str, nw.LazyFrame | pa.Table]) -> nw.LazyFrame:
        from medlake.engine.duckdb_sql import run_sql

        return run_sql(query, {name: self._arrow_of(frame) for name, frame in frames.items()})

    def hash_columns(self, frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
        """DuckDB's vectorized ``sha256`` over the frame's Arrow data."""
        if not columns:
            return frame
        from medlake.engine.duckdb_sql import salted_sha256

        return self.from_arrow(salted_sha256(self.to_arrow(frame), columns, salt))

    def check_session(
        self, table: str, data: CheckData, *, batch_id: str | None = None, drop: Sequence[str] = ()
    ) -> DuckDBSession:
        """DuckDB over the rows in memory (a Delta table is read once through delta-rs, filter pushed down)."""
        from medlake.engine.duckdb_sql import check_rows, check_session, open_delta_dataset

        if isinstance(data, LOCATION_TYPES):
            data = open_delta_dataset(data)
        elif isinstance(data, nw.LazyFrame):
            data = self.to_arrow(data)
        return check_session(table, check_rows(data, batch_id, drop))

    def splink(self, options: SplinkOptions) -> DuckDBSplink:
        from medlake.engine.duckdb_linkage import DuckDBSplink

        return DuckDBSplink(options)

    def state_table(self, path: str) -> DeltaStateTable:
        from medlake.engine.delta_state import DeltaStateTable

        return DeltaStateTable(path)
