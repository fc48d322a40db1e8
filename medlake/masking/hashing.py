"""Salted SHA-256 of whole columns, in the engine that holds the frame (no Python loop over rows).

narwhals has no hash function, so this is the one place masking speaks each engine's own language, chosen by a
lookup on the frame's backend: polars frames go through DuckDB's vectorized ``sha256`` (via Arrow), PySpark
frames through ``sha2(concat(salt, value), 256)`` on the executors. Both give the lowercase hex digest of the UTF-8
bytes of salt ‖ the value's canonical text, so a column hashed on either engine joins with the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import narwhals as nw
import pyarrow as pa

from medlake.masking.errors import MaskingError

__all__ = ["hash_columns", "salted_sha256"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def salted_sha256(table: pa.Table, columns: Sequence[str], salt: str) -> pa.Table:
    """``table`` with each of ``columns`` replaced by hex SHA-256 of salt ‖ value (nulls stay null)."""
    if not columns:
        return table
    import duckdb

    replaced = ", ".join(f"sha256($salt || CAST({_quote(c)} AS VARCHAR)) AS {_quote(c)}" for c in columns)
    with duckdb.connect() as con:
        con.register("masking_input", table)
        return con.sql(f"SELECT * REPLACE ({replaced}) FROM masking_input", params={"salt": salt}).to_arrow_table()


def _polars(frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
    import polars as pl

    native = nw.to_native(frame)
    eager = native.collect() if isinstance(native, pl.LazyFrame) else native
    hashed = pl.from_arrow(salted_sha256(eager.to_arrow(), columns, salt))
    assert isinstance(hashed, pl.DataFrame)
    return nw.from_native(hashed.lazy())


def _spark(frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
    from pyspark.sql import functions as F

    native = nw.to_native(frame)
    return nw.from_native(native.withColumns({
        c: F.sha2(F.concat(F.lit(salt), native[c].cast("string")), 256) for c in columns
    }))


_HASHERS: dict[nw.Implementation, Callable[[nw.LazyFrame, Sequence[str], str], nw.LazyFrame]] = {
    nw.Implementation.POLARS: _polars,
    nw.Implementation.PYSPARK: _spark,
}


def hash_columns(frame: nw.LazyFrame, columns: Sequence[str], salt: str) -> nw.LazyFrame:
    """``frame`` with ``columns`` replaced by salted SHA-256 hex digests, computed by the frame's own engine."""
    if not columns:
        return frame
    hasher = _HASHERS.get(frame.implementation)
    if hasher is None:
        raise MaskingError(f"mask: hashing is not implemented for {frame.implementation} frames")
    return hasher(frame, columns, salt)
