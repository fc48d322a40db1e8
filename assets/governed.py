"""Governed assets: the YAML workflows (source table → chain of medical operators → target table)."""

import os
from pathlib import Path

from dagster import AssetsDefinition

from medlake.workflows.assets import build_workflow_assets
from medlake.workflows.spec import load_workflows
from medlake.workflows.templates import TEMPLATES_DIR

__all__ = ["WORKFLOWS_DIR", "governed_assets"]

# By default the scenario templates shipped in the package (all four scenarios, the demo); a deployment lays down its
# own copy with `medlake init --scenario <name> --dir <folder>` and points MEDLAKE_WORKFLOWS at that folder.
WORKFLOWS_DIR = Path(os.environ.get("MEDLAKE_WORKFLOWS") or TEMPLATES_DIR)


def _governed() -> list[AssetsDefinition]:
    if not WORKFLOWS_DIR.is_dir():
        return []
    return [build_workflow_assets(spec) for spec in load_workflows(WORKFLOWS_DIR)]


governed_assets = _governed()
