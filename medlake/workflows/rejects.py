"""Rows an operator set aside, kept in ``lake/governance/quarantine`` with the step and the reason.

Rejected frames differ per table, so each row is kept whole as JSON in ``record`` beside fixed columns. Writes are
idempotent (MERGE on workflow, step, reason and record): a workflow run again over the same source, or rerun after
a crash, sets the same rows aside once, with the latest ``run_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import narwhals as nw
import polars as pl

from medlake.config import Settings
from medlake.engine.base import Engine, WriteResult

__all__ = ["QUARANTINE_COLUMNS", "QUARANTINE_KEY", "quarantine_path", "quarantine_rows"]

QUARANTINE_COLUMNS = (
    "workflow", "step_index", "step", "source_table", "target_table", "reason", "record", "run_id",
    "quarantined_at",
)
QUARANTINE_KEY = ("workflow", "step_index", "step", "source_table", "target_table", "reason", "record")
_NESTED = (pl.List, pl.Struct, pl.Array)


def quarantine_path(settings: Settings) -> Path:
    return settings.table_path("governance", "quarantine")


def quarantine_rows(
    engine: Engine,
    settings: Settings,
    rejected: nw.LazyFrame,
    *,
    workflow: str,
    step_index: int,
    step: str,
    source_table: str,
    target_table: str,
    run_id: str,
) -> WriteResult | None:
    """Add ``rejected`` (which carries ``_reject_reason``) to the quarantine table; None when it is empty."""
    frame = pl.from_arrow(engine.to_arrow(rejected))
    assert isinstance(frame, pl.DataFrame)
    if frame.height == 0:
        return None
    payload = [c for c in frame.columns if c != "_reject_reason"]
    text = frame.select(
        pl.col(c) if isinstance(frame.schema[c], _NESTED) else pl.col(c).cast(pl.Utf8) for c in payload
    )
    rows = pl.DataFrame({
        "workflow": workflow,
        "step_index": step_index,
        "step": step,
        "source_table": source_table,
        "target_table": target_table,
        "reason": (frame["_reject_reason"].cast(pl.Utf8) if "_reject_reason" in frame.columns
                   else pl.Series([None] * frame.height, dtype=pl.Utf8)).fill_null("rejected"),
        "record": text.select(pl.struct(pl.all()).struct.json_encode()).to_series(),
        "run_id": run_id,
        "quarantined_at": datetime.now(UTC),
    }).with_columns(pl.col("step_index").cast(pl.Int64), pl.col("quarantined_at").cast(pl.Datetime("us", "UTC")))
    return engine.merge(
        engine.from_arrow(rows.select(QUARANTINE_COLUMNS).unique(subset=list(QUARANTINE_KEY)).to_arrow()),
        str(quarantine_path(settings)), keys=QUARANTINE_KEY,
        metadata={"writer": "medlake.workflows", "workflow": workflow},
    )
