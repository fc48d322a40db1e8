"""Governed assets: the YAML workflows (source table → chain of medical operators → target table)."""

from dagster import AssetsDefinition

from medlake.config import Settings
from medlake.workflows.assets import build_workflow_assets
from medlake.workflows.spec import load_workflows

__all__ = ["governed_assets"]


def governed_assets(current: Settings) -> list[AssetsDefinition]:
    """One asset per workflow in ``current.workflows``: laid down by `medlake init --scenario <name>`, another
    folder chosen with ``MEDLAKE_WORKFLOWS``; none when the folder does not exist."""
    if not current.workflows.is_dir():
        return []
    return [build_workflow_assets(spec) for spec in load_workflows(current.workflows)]
