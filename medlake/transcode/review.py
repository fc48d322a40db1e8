"""The review table of unmapped local codes: one row per (institution, category, local code), upserted.

Occurrences are those of the latest run (re-running on the same data does not inflate them); ``first_seen`` is
kept from the first run that found the code, ``last_seen`` moves forward.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from medlake.config import Settings
from medlake.engine.base import Engine, WriteResult

__all__ = ["REVIEW_KEY", "REVIEW_LAYER", "REVIEW_TABLE", "review_path", "write_review"]

REVIEW_LAYER = "governance"
REVIEW_TABLE = "transcode_review"
REVIEW_KEY = ("institution", "category", "local_code")
_TS = pl.Datetime("us", "UTC")


def review_path(settings: Settings) -> Path:
    return settings.table_path(REVIEW_LAYER, REVIEW_TABLE)


def write_review(
    engine: Engine,
    settings: Settings,
    unmapped: pl.DataFrame,
    *,
    standard_version: str,
    now: datetime | None = None,
) -> WriteResult | None:
    """Upsert ``unmapped`` (institution, category, local_code, local_name, occurrences, suggestions)."""
    if unmapped.height == 0:
        return None
    stamp = now or datetime.now(UTC)
    path = str(review_path(settings))
    rows = unmapped.with_columns(
        pl.lit(standard_version, pl.Utf8).alias("standard_version"),
        pl.col("occurrences").cast(pl.Int64),
        pl.lit(stamp, _TS).alias("last_seen"),
    )
    if engine.exists(path):
        seen = pl.from_arrow(engine.to_arrow(engine.read(path).select(*REVIEW_KEY, "first_seen")))
        rows = rows.join(seen, on=list(REVIEW_KEY), how="left")  # type: ignore[arg-type]
        rows = rows.with_columns(pl.col("first_seen").cast(_TS).fill_null(pl.lit(stamp, _TS)))
    else:
        rows = rows.with_columns(pl.lit(stamp, _TS).alias("first_seen"))
    rows = rows.select(
        *REVIEW_KEY, "local_name", "suggestions", "occurrences", "standard_version", "first_seen", "last_seen"
    )
    return engine.merge(
        engine.from_arrow(rows.to_arrow()), path, keys=REVIEW_KEY, metadata={"writer": "medlake.transcode"}
    )
