"""The dbt project's location and manifest, prepared (``dbt parse``) when missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from medlake.resources import DBT_PROJECT_DIR

__all__ = ["dbt_project", "manifest_path"]


def dbt_project() -> DbtProject:
    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target=os.environ.get("MEDLAKE_ENGINE", "polars"),
    )


def manifest_path() -> Path:
    """The parsed manifest; parses the project once if it has not been (a fresh checkout, CI)."""
    project = dbt_project()
    if not project.manifest_path.exists():
        # dagster-dbt's preparer runs the `dbt` found on PATH; a venv that is not activated has none there, so
        # parse with the dbt installed beside this interpreter (medlake's resource: no `dbt --version` first).
        from medlake.resources import DbtResource

        dbt = DbtResource(project_dir=project, dbt_executable=str(Path(sys.executable).parent / "dbt"))
        dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path
