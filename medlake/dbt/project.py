"""The dbt project: its location, its manifest (prepared with ``dbt parse`` when missing), and what a run is given
from :class:`~medlake.config.Settings` — the profile of the engine's target and the lake root as the one dbt
variable ``medlake_lake``. dbt reads no environment variable of medlake's: models and sources resolve the lake
through ``var('medlake_lake')``, so dbt, assets, checks and sensors cannot disagree about where the lake is."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medlake.config import Settings

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

__all__ = [
    "DBT_PROJECT_DIR", "MANIFEST_PATH", "dbt_executable", "dbt_project", "dbt_vars", "manifest_path", "write_profiles",
]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent.parent / "dbt_project"
_PROFILE = "medlake"
_PROJECT_SUFFIXES = (".sql", ".yml", ".yaml", ".csv")
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"  # dagster-dbt's DbtProject default target path


def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The project as dagster-dbt sees it. Parsing uses the checked-in ``profiles.yml`` (target ``polars``, no
    connection is opened); runs use the profile :func:`write_profiles` writes for the configured engine."""
    from dagster_dbt import DbtProject

    return DbtProject(project_dir=project_dir, profiles_dir=project_dir, target="polars")


def manifest_path(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """The parsed manifest, parsed again whenever a model, macro, test or the project file is newer than it (a fresh
    checkout, CI, an analyst's new model under ``make dev``: what dagster-dbt's ``prepare_if_dev`` does, in every
    process, because a fresh manifest costs one ``stat`` per project file and no dbt import). Concurrent processes
    parse once: the first holds a lock on the target folder, the others wait and find the manifest fresh."""
    manifest = project_dir / "target" / "manifest.json"  # dagster-dbt's DbtProject default target path
    if not _stale(manifest, project_dir):
        return manifest
    from filelock import FileLock

    from medlake.dbt.cli_resource import MedlakeDbtCliResource

    manifest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(manifest.parent / ".parse.lock"):
        if _stale(manifest, project_dir):
            # dagster-dbt's preparer runs the `dbt` found on PATH; a venv that is not activated has none there
            project = dbt_project(project_dir)
            dbt = MedlakeDbtCliResource(project_dir=project, dbt_executable=dbt_executable())
            dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return manifest


def _stale(manifest: Path, project_dir: Path) -> bool:
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots", "analyses"):
        sources.extend(p for p in (project_dir / folder).rglob("*") if p.suffix in _PROJECT_SUFFIXES)
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def dbt_executable() -> str:
    """The dbt installed beside medlake (the venv's), whatever PATH says."""
    return str(Path(sys.executable).parent / "dbt")


def dbt_vars(settings: Settings) -> str:
    """The ``--vars`` argument of a dbt invocation for ``settings``."""
    return json.dumps({"medlake_lake": str(settings.lake)})


def write_profiles(settings: Settings) -> Path:
    """Write ``profiles.yml`` with the engine's target under ``work/dbt/profile`` and return its folder."""
    import yaml

    from medlake.engine import dbt_output

    profile = {_PROFILE: {"target": settings.engine, "outputs": {settings.engine: dbt_output(settings)}}}
    folder = settings.work / "dbt" / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder
