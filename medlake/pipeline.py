"""Run the asset graph in-process against the Dagster instance at ``DAGSTER_HOME`` (runs show in the UI)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from medlake.config import Settings, settings

__all__ = ["RunOutcome", "materialize", "step_seconds"]


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    run_id: str
    failed_steps: tuple[str, ...]
    checks_failed: tuple[str, ...]
    step_seconds: dict[str, float] = field(default_factory=dict)  # successful steps' durations, slowest first


def _job(selection: str) -> Any:
    from dagster import AssetSelection, Definitions, define_asset_job

    from medlake.definitions import defs

    if selection == "*":
        return defs.get_job_def("medlake_all")
    job = define_asset_job("medlake_selection", selection=AssetSelection.from_string(selection))
    return Definitions.merge(defs, Definitions(jobs=[job])).get_job_def("medlake_selection")


def materialize(selection: str = "*", current: Settings | None = None) -> RunOutcome:
    """Materialize ``selection`` (Dagster's asset selection syntax, e.g. ``group:dwd``) with the project's
    definitions, recording the run in the instance so the UI shows it."""
    from dagster import DagsterInstance

    current = current or settings()
    os.environ.setdefault("DAGSTER_HOME", str(current.dagster_home))
    current.dagster_home.mkdir(parents=True, exist_ok=True)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the full log is in the instance
    result = _job(selection).execute_in_process(instance=DagsterInstance.get(), raise_on_error=False,
                                                run_config=quiet)
    failed = tuple(e.step_key or "" for e in result.all_events if e.is_step_failure)
    checks_failed = tuple(
        f"{data.asset_key.to_user_string()}:{data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and (data := e.event_specific_data) is not None
        and not data.passed
    )
    return RunOutcome(result.success, result.run_id, failed, checks_failed, step_seconds(result))


def step_seconds(result: Any) -> dict[str, float]:
    """Seconds per successful step of an in-process run's result, slowest first."""
    durations = {
        e.step_key or "": round(float(e.event_specific_data.duration_ms) / 1000, 2)
        for e in result.all_events
        if e.is_step_success and e.event_specific_data is not None
    }
    return dict(sorted(durations.items(), key=lambda kv: -kv[1]))
