"""Factory: a ``WorkflowSpec`` → one Dagster asset that runs the workflow and reports every step.

No ``from __future__ import annotations`` here: Dagster inspects the ``context`` annotation at definition time.
"""


from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from medlake.workflows.errors import WorkflowStepFailed
from medlake.workflows.spec import WorkflowSpec

if TYPE_CHECKING:  # the engines' libraries load when a workflow runs, not with the definitions
    from medlake.workflows.run import StepReport

__all__ = ["build_workflow_assets", "step_metadata"]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def step_metadata(steps: "Sequence[StepReport]") -> dict[str, Any]:
    """Rows in / out / rejected and status per step, as flat keys, one markdown table and the metrics as JSON."""
    table = ["| # | operator | rows in | rows out | rejected | status | seconds |", "|---|---|---|---|---|---|---|"]
    metadata: dict[str, Any] = {}
    for s in steps:
        prefix = f"step{s.index + 1}_{s.operator}"
        metadata[f"{prefix}/rows_in"] = s.rows_in
        metadata[f"{prefix}/rows_out"] = s.rows_out
        metadata[f"{prefix}/rows_rejected"] = s.rows_rejected
        metadata[f"{prefix}/status"] = str(s.status)
        if s.metrics:
            metadata[f"{prefix}/metrics"] = MetadataValue.json(_json_safe(s.metrics))
        table.append(f"| {s.index + 1} | {s.operator} | {s.rows_in} | {s.rows_out} | {s.rows_rejected} | "
                     f"{s.status} | {s.seconds} |")
    metadata["steps"] = MetadataValue.md("\n".join(table))
    return metadata


def _key(value: AssetKey | Sequence[str] | str) -> AssetKey:
    if isinstance(value, AssetKey):
        return value
    return AssetKey(value.split("/")) if isinstance(value, str) else AssetKey(list(value))


def _column_lineage(spec: WorkflowSpec, source: str) -> dict[str, Any]:
    from medlake.lineage.delta_log import delta_snapshot
    from medlake.lineage.derivation import workflow_column_lineage

    snapshot = delta_snapshot(source)
    return workflow_column_lineage(spec, source, snapshot.schema.names) if snapshot else {}


def build_workflow_assets(
    spec: WorkflowSpec, *, source_asset_key: AssetKey | Sequence[str] | str | None = None
) -> AssetsDefinition:
    """The asset ``<target layer>/<target name>`` depending on the source asset; needs the ``lake`` resource
    (anything with ``.engine``, ``.settings`` and ``.secrets``, e.g. ``medlake.resources.LakeResource``)."""
    chain = " → ".join(s.operator for s in spec.steps)

    @asset(
        key=_key(spec.target),
        deps=[_key(source_asset_key or spec.source)],
        group_name=spec.group or spec.scenario,
        owners=[spec.owner] if spec.owner else None,
        description=spec.description or f"{spec.source} → {chain} → {spec.target}",
        required_resource_keys={"lake"},
        kinds={"delta", "polars"},
        tags={"medlake/scenario": spec.scenario},
        metadata={"workflow": spec.name, "workflow_file": spec.file, "operators": chain, "source": spec.source},
    )
    def _workflow(context: AssetExecutionContext) -> MaterializeResult:
        from medlake.lineage.materialization import materialization_lineage
        from medlake.workflows.run import run_workflow

        lake = context.resources.lake
        source = str(lake.settings.table_path(*spec.source_parts))
        target = str(lake.settings.table_path(*spec.target_parts))
        try:
            with materialization_lineage(context, lake.settings, [source], [target],
                                         lambda: _column_lineage(spec, source)):
                run = run_workflow(spec, lake.engine, lake.settings, run_id=context.run_id, log=context.log,
                                   secrets=lake.secrets)
        except WorkflowStepFailed as exc:
            raise Failure(description=str(exc), metadata=step_metadata(exc.steps)) from exc
        return MaterializeResult(
            metadata={
                **step_metadata(run.steps),
                "status": str(run.status),
                "dagster/row_count": run.write.rows_written,
                "path": MetadataValue.path(run.target_path),
                "delta_version": run.write.version,
            }
        )

    return _workflow
