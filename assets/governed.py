"""Governed assets: the YAML workflows (source table → chain of medical operators → target table)."""

import os
from pathlib import Path

from dagster import AssetsDefinition

from medlake.workflows.assets import build_workflow_assets
from medlake.workflows.spec import load_workflows

__all__ = ["WORKFLOWS_DIR", "governed_assets"]

# Laid down by `medlake init --scenario <name>`; another folder can be chosen with MEDLAKE_WORKFLOWS.
WORKFLOWS_DIR = Path(os.environ.get("MEDLAKE_WORKFLOWS") or Path(__file__).resolve().parent.parent / "workflows")


def _governed() -> list[AssetsDefinition]:
    if not WORKFLOWS_DIR.is_dir():
        return []
    return [build_workflow_assets(spec) for spec in load_workflows(WORKFLOWS_DIR)]


governed_assets = _governed()
