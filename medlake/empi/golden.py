"""Survivorship: one golden record per master ID from its source records.

Per field the value comes from the most trusted source (``source_priority``, higher wins), then the most recent
(``updated_at``), then the most complete record; a valid ID number beats an invalid one from any source.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

__all__ = ["GOLDEN_FIELDS", "golden_records"]

GOLDEN_FIELDS = ("name", "birth_date", "sex", "phone", "address", "region")


def golden_records(index_rows: pl.DataFrame, source_priority: Mapping[str, int] | None = None) -> pl.DataFrame:
    """``master_id``, the golden fields, ``id_number`` and ``record_count`` for every master in ``index_rows``."""
    priority = dict(source_priority or {})
    completeness = pl.sum_horizontal([pl.col(f).is_not_null().cast(pl.Int32) for f in (*GOLDEN_FIELDS, "id_number")])
    trust = (
        pl.col("source").replace_strict(priority, default=0, return_dtype=pl.Int64)
        if priority
        else pl.lit(0, dtype=pl.Int64)
    )
    ranked = index_rows.with_columns(_trust=trust, _complete=completeness).sort(
        ["master_id", "_trust", "updated_at", "_complete", "record_id"],
        descending=[False, True, True, True, False],
        nulls_last=True,
    )
    return ranked.group_by("master_id", maintain_order=True).agg(
        *[pl.col(f).drop_nulls().first() for f in GOLDEN_FIELDS],
        pl.coalesce(
            pl.col("id_number").filter(pl.col("id_valid")).first(), pl.col("id_number").drop_nulls().first()
        ).alias("id_number"),
        pl.len().cast(pl.Int64).alias("record_count"),
    )
