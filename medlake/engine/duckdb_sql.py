"""The embedded engine's SQL: an in-process DuckDB connection over Arrow data (polars hands frames over zero-copy).

Checks, ad-hoc SQL over frames and column hashing of the polars engine run here; the Spark engine's counterparts are
in :mod:`medlake.engine.spark_sql`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import narwhals as nw
import polars as pl
import pyarrow as pa

from medlake.errors import TableNotFoundError

__all__ = ["DuckDBSession", "check_rows", "check_session", "connect", "open_delta_dataset", "run_sql", "salted_sha256"]


def connect() -> Any:
    """A fresh in-memory DuckDB connection (no progress bar on the console)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def open_delta_dataset(path: PurePath | str) -> Any:
    """A Delta table (local path or object-store URI) as a lazily scanned pyarrow dataset."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError as _DeltaMissing

    try:
        return DeltaTable(str(path)).to_pyarrow_dataset()
    except _DeltaMissing:
        raise TableNotFoundError(f"no Delta table at {path}") from None


def check_rows(data: Any, batch_id: str | None, drop: Sequence[str]) -> pa.Table:
    """``data`` (an Arrow table or dataset) as one in-memory Arrow table without the ``drop`` columns, filtered to
    ``_batch_id == batch_id``. A dataset is read once here (pyarrow's threaded Parquet reader, filter and
    projection pushed down) so that the several passes of a check run scan memory, not Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    condition = pc.field("_batch_id") == batch_id if batch_id is not None else None
    if isinstance(data, ds.Dataset):
        return data.to_table(columns=[n for n in data.schema.names if n not in drop], filter=condition)
    table = data if isinstance(data, pa.Table) else pa.table(data)
    present = [c for c in drop if c in table.column_names]
    if present:
        table = table.drop_columns(present)
    return table.filter(condition) if condition is not None else table


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lazy(table: pa.Table) -> nw.LazyFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return nw.from_native(frame.lazy())


class DuckDBSession:
    """A :class:`medlake.engine.base.SqlSession` on one in-memory DuckDB connection."""

    def __init__(self, con: Any | None = None) -> None:
        self.con = con if con is not None else connect()

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql).fetchall())

    def frame(self, sql: str) -> nw.LazyFrame:
        return _lazy(self.con.sql(sql).to_arrow_table())

    def soda_data_source(self, name: str) -> Any:
        # soda_core first: importing it loads every Soda data-source plugin by entry point; entered through the
        # plugin's own module instead, that loading finds the module half-initialized and logs a circular-import error
        import soda_core  # noqa: F401
        from soda_duckdb.common.data_sources.duckdb_data_source import DuckDBDataSourceImpl

        return DuckDBDataSourceImpl.from_existing_cursor(self.con, name)

    def soda_contract(self, contract: dict[str, Any], data_source: str) -> dict[str, Any]:
        return contract  # generated for DuckDB

    def close(self) -> None:
        self.con.close()


def check_session(table: str, rows: pa.Table) -> DuckDBSession:
    """A session where ``rows`` is the view ``main.<table>``."""
    session = DuckDBSession()
    session.register("_medlake_source", rows)
    session.con.execute(f"CREATE VIEW main.{_quote(table)} AS SELECT * FROM _medlake_source")
    return session


def run_sql(query: str, frames: Mapping[str, pa.Table]) -> nw.LazyFrame:
    """``query`` over the Arrow tables ``frames`` (registered under their names), as a polars-backed frame."""
    session = DuckDBSession()
    try:
        for name, table in frames.items():
            session.register(name, table)
        return session.frame(query)
    finally:
        session.close()


def salted_sha256(table: pa.Table, columns: Sequence[str], salt: str) -> pa.Table:
    """``table`` with each of ``columns`` replaced by hex SHA-256 of salt ‖ value (nulls stay null), vectorized by
    DuckDB's ``sha256``."""
    if not columns:
        return table
    replaced = ", ".join(f"sha256($salt || CAST({_quote(c)} AS VARCHAR)) AS {_quote(c)}" for c in columns)
    con = connect()
    try:
        con.register("masking_input", table)
        return con.sql(f"SELECT * REPLACE ({replaced}) FROM masking_input", params={"salt": salt}).to_arrow_table()
    finally:
        con.close()
