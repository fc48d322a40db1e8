"""Run the asset graph in-process against the Dagster instance at ``DAGSTER_HOME`` (runs show in the UI)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlake.config import Settings, settings

__all__ = ["RunOutcome", "instance_home", "materialize", "prepare_instance", "step_seconds"]

_TELEMETRY_OFF = "telemetry:\n  enabled: false\n"


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    run_id: str
    failed_steps: tuple[str, ...]
    checks_failed: tuple[str, ...]
    step_seconds: dict[str, float] = field(default_factory=dict)  # successful steps' durations, slowest first


def instance_home(current: Settings | None = None) -> Path:
    """The Dagster instance folder: ``DAGSTER_HOME`` when set, else ``$MEDLAKE_HOME/dagster``
    (:attr:`medlake.config.Settings.dagster_home`)."""
    return (current or settings()).dagster_home


def prepare_instance(current: Settings | None = None) -> Path:
    """Create the instance folder and switch Dagster's telemetry off in its ``dagster.yaml`` (which also silences
    the telemetry banner). An existing ``dagster.yaml`` keeps every setting; the telemetry block is only appended
    when the file has none, so a deliberate choice there stands."""
    import yaml

    home = instance_home(current)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = config.read_text(encoding="utf-8") if config.exists() else ""
    if "telemetry" not in (yaml.safe_load(text) or {}):
        config.write_text(text + ("\n" if text and not text.endswith("\n") else "") + _TELEMETRY_OFF, encoding="utf-8")
    return home


def _job(selection: str, current: Settings) -> Any:
    from dagster import AssetSelection, Definitions, define_asset_job

    from medlake.definitions import build_definitions

    defs = build_definitions(current)

    if selection == "*":
        return defs.resolve_job_def("medlake_all")
    job = define_asset_job("medlake_selection", selection=AssetSelection.from_string(selection))
    return Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def("medlake_selection")


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


@contextmanager
def _unsynced_event_log() -> Iterator[None]:
    """While an in-process run executes, SQLite commits of the instance skip fsync. Dagster's SQLite storage opens,
    commits and closes a connection per event — about 1,250 events for the whole graph, most of them the asset
    checks' planned/evaluation/output events — and each commit's fsync took ~20 ms (over a minute per run on a busy
    disk). The writes still reach the OS when committed, so a crash of this process loses nothing; an OS crash or
    power loss during the run may damage the instance's run history (never the lake: Delta commits are separate)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _no_fsync)
    try:
        yield
    finally:
        event.remove(Engine, "connect", _no_fsync)


def materialize(
    selection: str = "*",
    current: Settings | None = None,
    *,
    on_start: Callable[[int], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunOutcome:
    """Materialize ``selection`` (Dagster's asset selection syntax, e.g. ``group:dwd``) with the project's
    definitions, recording the run in the instance so the UI shows it. ``on_start`` gets the run's step count
    before it starts, ``on_event`` every ``EventLogEntry`` of the run as it is stored (a progress view); with a
    listener the console shows errors only (warnings stay in the run's log)."""
    from dagster import DagsterInstance

    current = current or settings()
    home = prepare_instance(current)
    job = _job(selection, current)
    instance, run_id = DagsterInstance.from_config(str(home)), str(uuid.uuid4())
    if on_start is not None:
        on_start(len(job.graph.nodes))  # one step per op: assets, multi-assets and multi-asset checks alike
    if on_event is not None:
        instance.add_event_listener(run_id, on_event)
    level = "ERROR" if on_event is not None else "WARNING"
    console = {"loggers": {"console": {"config": {"log_level": level}}}}  # the full log is in the instance
    with _unsynced_event_log():
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=console, run_id=run_id)
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
