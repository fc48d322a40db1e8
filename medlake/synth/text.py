"""Turning typed values into the text front-end machines deliver (one place for every format)."""

from __future__ import annotations

import polars as pl

__all__ = ["DATETIME_FORMAT", "datetime_text", "fixed_point_text"]

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def datetime_text(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime(DATETIME_FORMAT)


def fixed_point_text(units: pl.Expr, scale: int = 2) -> pl.Expr:
    """Integer ``units`` of 10^-scale as decimal text (``-1234`` → ``"-12.34"``), exact (no float rounding)."""
    if scale == 0:
        return units.cast(pl.Utf8)
    sign = pl.when(units < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    mag = units.abs()
    return pl.concat_str(
        sign,
        (mag // 10**scale).cast(pl.Utf8),
        pl.lit("."),
        (mag % 10**scale).cast(pl.Utf8).str.zfill(scale),
    )
