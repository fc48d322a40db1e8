"""Run a workflow outside or inside Dagster: read the source, apply each operator, quarantine, write the target."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medlake.config import Settings
from medlake.engine.base import Engine, WriteResult
from medlake.lake.crashpoints import crash_point
from medlake.lake.locks import table_lock
from medlake.operators.base import OperatorContext, StepStatus
from medlake.workflows.errors import WorkflowError, WorkflowStepFailed
from medlake.workflows.registry import build_operator
from medlake.workflows.rejects import quarantine_rows
from medlake.workflows.spec import WorkflowSpec

__all__ = ["StepReport", "WorkflowRun", "run_workflow"]


@dataclass(frozen=True)
class StepReport:
    index: int
    operator: str
    rows_in: int
    rows_out: int
    rows_rejected: int
    status: StepStatus
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkflowRun:
    spec: WorkflowSpec
    steps: list[StepReport]
    target_path: str
    write: WriteResult

    @property
    def status(self) -> StepStatus:
        return StepStatus.WARN if any(s.status is not StepStatus.OK for s in self.steps) else StepStatus.OK


def run_workflow(
    spec: WorkflowSpec, engine: Engine, settings: Settings, *, run_id: str = "", log: Any = None,
    secrets: Mapping[str, str] | None = None,
) -> WorkflowRun:
    """Apply the steps in order; a step that reports ``failed`` stops the run before the target is written. The
    target's write lock is held from reading the source to committing the target. ``secrets`` (name → value, e.g.
    the mask salt) come from the caller: in Dagster, the ``lake`` resource's EnvVar-bound secrets."""
    with table_lock(settings, spec.target):
        return _run_steps(spec, engine, settings, run_id, log, dict(secrets or {}))


def _run_steps(
    spec: WorkflowSpec, engine: Engine, settings: Settings, run_id: str, log: Any, secrets: dict[str, str]
) -> WorkflowRun:
    frame = engine.read(str(settings.table_path(*spec.source_parts)))
    ctx = OperatorContext(engine=engine, settings=settings, table=spec.source.replace("/", "."), run_id=run_id,
                          log=log, secrets=secrets)
    reports: list[StepReport] = []
    for i, step in enumerate(spec.steps):
        try:
            operator = build_operator(step.operator, step.config)
        except WorkflowError as exc:
            raise WorkflowError(exc.reason, file=spec.file, line=step.line, where=f"steps[{i}]") from None
        started = time.perf_counter()
        result = operator.run(frame, ctx)
        if result.rejected is not None and result.rows_rejected:
            quarantine_rows(engine, settings, result.rejected, workflow=spec.name, step_index=i,
                            step=step.operator, source_table=spec.source, target_table=spec.target, run_id=run_id)
            crash_point("workflow.quarantine.after_commit")
        reports.append(StepReport(i, step.operator, result.rows_in, result.rows_out, result.rows_rejected,
                                  StepStatus(result.status), round(time.perf_counter() - started, 3),
                                  result.metrics))
        if result.status == StepStatus.FAILED:
            raise WorkflowStepFailed(f"{spec.file}:{step.line}: step {i} ({step.operator}) failed", reports)
        frame = result.frame
    target = str(settings.table_path(*spec.target_parts))
    commit = {"writer": "medlake.workflows", "workflow": spec.name, "run_id": run_id}
    crash_point("workflow.target.before_commit")
    if spec.write == "merge":
        written = engine.merge(frame, target, keys=tuple(spec.merge_keys), metadata=commit)
    else:
        written = engine.overwrite(frame, target, metadata=commit)
    crash_point("workflow.target.after_commit")
    _record_risk(engine, settings, spec, reports, run_id)
    return WorkflowRun(spec=spec, steps=reports, target_path=target, write=written)


def _record_risk(engine: Engine, settings: Settings, spec: WorkflowSpec, reports: list[StepReport],
                 run_id: str) -> None:
    """The re-identification risk a ``deidentify`` step measured, recorded in the catalog once the target that
    holds those records is committed."""
    measured = [r for r in reports if r.operator == "deidentify"]
    if measured:
        from medlake.security.deidentify import record_step_risk

        for report in measured:
            record_step_risk(engine, settings, spec.target.replace("/", "."), report.metrics, run_id=run_id)
