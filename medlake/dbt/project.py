"""The dbt project's location and manifest, prepared (``dbt parse``) when missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medlake.resources import DBT_PROJECT_DIR

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

__all__ = ["MANIFEST_PATH", "dbt_project", "manifest_path"]

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"  # dagster-dbt's DbtProject default target path


def dbt_project() -> DbtProject:
    from dagster_dbt import DbtProject

    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target=os.environ.get("MEDLAKE_ENGINE", "polars"),
    )


def manifest_path() -> Path:
    """The parsed manifest; parses the project once if it has not been (a fresh checkout, CI)."""
    if MANIFEST_PATH.exists():
        return MANIFEST_PATH
    # dagster-dbt's preparer runs the `dbt` found on PATH; a venv that is not activated has none there, so
    # parse with the dbt installed beside this interpreter.
    from dagster_dbt import DbtCliResource

    project = dbt_project()
    dbt = DbtCliResource(project_dir=project, dbt_executable=str(Path(sys.executable).parent / "dbt"))
    dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path
