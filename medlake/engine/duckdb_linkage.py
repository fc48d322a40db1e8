"""Splink on an in-process DuckDB connection: the embedded engine's linkage backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from medlake.engine.base import SplinkOptions

__all__ = ["DuckDBSplink"]


class DuckDBSplink:
    """A :class:`medlake.engine.base.SplinkBackend` on its own DuckDB connection (closed with it)."""

    dialect = "duckdb"

    def __init__(self, options: SplinkOptions) -> None:
        import duckdb
        from splink import DuckDBAPI

        self._con = duckdb.connect()
        self._con.execute(f"SET threads={int(options.threads)}")
        self._con.execute(f"SET memory_limit='{options.memory_limit}'")
        self._con.execute("SET enable_progress_bar=false")
        self.db_api = DuckDBAPI(connection=self._con)

    def to_arrow(self, result: Any, columns: Sequence[str]) -> pa.Table:
        return result.as_duckdbpyrelation().select(*columns).to_arrow_table()

    def close(self) -> None:
        self._con.close()
