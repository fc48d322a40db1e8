"""The contract every operator implements: a frame in, a frame out, rejects and figures on the side."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import narwhals as nw

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.engine.base import Engine

__all__ = ["Operator", "OperatorContext", "OperatorResult", "StepStatus", "count_rows"]


class StepStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAILED = "failed"


@dataclass(frozen=True)
class OperatorContext:
    """What an operator may use: the engine, where the lake is, and which table/batch it works on."""

    engine: Engine
    settings: Settings
    table: str  # logical name of the table being processed, e.g. "dwd.patient"
    run_id: str = ""
    log: Any = None  # a Dagster log manager or a logging.Logger


@dataclass
class OperatorResult:
    """Output rows, rows set aside (with a ``_reject_reason`` column) and what happened, for asset metadata."""

    frame: nw.LazyFrame
    rejected: nw.LazyFrame | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    status: StepStatus = StepStatus.OK
    metrics: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Operator(Protocol):
    """An operator is configured from a YAML mapping and applied to one frame."""

    kind: str  # the name used in workflow YAML, e.g. "quality", "transcode", "empi"

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult: ...


def count_rows(frame: nw.LazyFrame | nw.DataFrame) -> int:
    """Rows of a frame, counted by its engine (a Spark job, a polars scan) without collecting the rows."""
    if isinstance(frame, nw.DataFrame):
        return frame.shape[0]
    return int(frame.select(nw.len()).collect().item())
