"""OpenLineage around a Dagster materialization: the one helper every asset factory uses.

The job is the asset key (``dwd/patient``), the parent run is the Dagster job and run, and events go where
``medlake.lineage.emitter`` sends them for the asset's lake. Lineage is an observer: a failure to build or send an
event is logged and never changes the outcome of the materialization.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medlake.config import LINEAGE_API_KEY, Settings
from medlake.layers import Layer
from medlake.lineage.dbt import DbtRelation, emit_dbt_run
from medlake.lineage.emitter import LineageEmitter, LineageRun, emit_run

__all__ = ["dagster_parent", "dbt_relation_location", "emit_theme_lineage", "materialization_lineage"]

log = logging.getLogger("medlake.lineage")

ColumnLineageArg = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None


def dagster_parent(context: Any) -> tuple[str, str]:
    """(Dagster job name, run id) of an asset execution context: the parent of the lineage run."""
    return str(context.job_name), str(context.run_id)


def _emitter(context: Any, config: Settings) -> LineageEmitter:
    """The emitter for ``config``'s lake, authenticated with the API key the context's ``lake`` resource binds."""
    lake = getattr(getattr(context, "resources", None), "lake", None)
    secret = getattr(lake, "secret", None)
    return LineageEmitter(config=config, api_key=secret(LINEAGE_API_KEY) if callable(secret) else "")


def _inert(job: str) -> LineageRun:
    return LineageRun(job=job, run_id="", inputs=[], outputs=[])


@contextmanager
def materialization_lineage(
    context: Any,
    config: Settings,
    inputs: Iterable[str | Path] = (),
    outputs: Iterable[str | Path] = (),
    column_lineage: ColumnLineageArg = None,
) -> Iterator[LineageRun]:
    """START before the body, COMPLETE (or FAIL) after, for the asset ``context`` materializes.

    ``column_lineage`` may be a callable, evaluated under the same protection as the events. The body may add what
    it learns through the yielded run (``record_input``, ``record_output``).
    """
    job = context.asset_key.to_user_string()
    try:
        lineage = column_lineage() if callable(column_lineage) else column_lineage
        manager = emit_run(context.asset_key.path, inputs, outputs, lineage, parent=dagster_parent(context),
                           emitter=_emitter(context, config))
        run = manager.__enter__()
    except Exception as exc:  # lineage never breaks a materialization
        log.warning("lineage of %s not emitted: %s", job, exc)
        yield _inert(job)
        return
    try:
        yield run
    except BaseException as exc:
        try:
            manager.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException as raised:
            if raised is not exc:
                log.warning("FAIL event of %s not emitted: %s", job, raised)
        raise
    try:
        manager.__exit__(None, None, None)
    except Exception as exc:
        log.warning("COMPLETE event of %s not emitted: %s", job, exc)


def dbt_relation_location(config: Settings, relation: DbtRelation) -> str | None:
    """Where a dbt relation lives in the lake: sources ``dwd.<table>`` → DWD tables, models → theme tables."""
    if relation.resource_type == "source":
        return str(config.table_path(Layer.DWD.value, relation.name))
    if relation.resource_type in ("model", "snapshot", "seed"):
        return str(config.table_path(Layer.THEME.value, relation.name))
    return None


def emit_theme_lineage(
    target_dir: Path,
    config: Settings,
    parent: tuple[str, str],
    asset_key: Callable[[DbtRelation], str | Sequence[str]] | None = None,
    api_key: str = "",
) -> int:
    """After a dbt invocation: one START + COMPLETE/FAIL per executed model from that invocation's own
    ``manifest.json`` and ``run_results.json``. Returns the events emitted (0 when lineage could not be sent).
    ``api_key`` authenticates an HTTP lineage transport."""
    try:
        return emit_dbt_run(
            target_dir / "manifest.json", target_dir / "run_results.json",
            lambda relation: dbt_relation_location(config, relation),
            asset_key=asset_key, emitter=LineageEmitter(config=config, api_key=api_key), parent=parent,
        )
    except Exception as exc:  # lineage never breaks a materialization
        log.warning("dbt lineage from %s not emitted: %s", target_dir, exc)
        return 0
