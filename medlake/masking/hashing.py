"""Salted SHA-256 of whole columns, computed by DuckDB's vectorized ``sha256`` (no Python loop over rows)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

__all__ = ["salted_sha256"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def salted_sha256(table: pa.Table, columns: Sequence[str], salt: str) -> pa.Table:
    """``table`` with each of ``columns`` replaced by hex SHA-256 of salt ‖ value (nulls stay null)."""
    if not columns:
        return table
    replaced = ", ".join(f"sha256($salt || CAST({_quote(c)} AS VARCHAR)) AS {_quote(c)}" for c in columns)
    with duckdb.connect() as con:
        con.register("masking_input", table)
        return con.sql(f"SELECT * REPLACE ({replaced}) FROM masking_input", params={"salt": salt}).to_arrow_table()
