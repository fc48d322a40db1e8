"""The dbt project's location and manifest, prepared (``dbt parse``) when missing."""

from __future__ import annotations

import os
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
        project.preparer.prepare(project)
    return project.manifest_path
