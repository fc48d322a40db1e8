"""An analyst's new model appears in the themes without a manual ``dbt parse`` (dagster-dbt's ``prepare_if_dev``):
loading the theme specs parses the project again when a model file is newer than the manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

from medlake.dbt.project import DBT_PROJECT_DIR, manifest_path
from medlake.dbt.specs import theme_specs

_NEW_MODEL = """-- An analyst's first model: inpatient encounters only.
select institution_code, encounter_id, admit_time
from {{ ref('stg_dwd__encounters') }}
where encounter_type = 'inpatient'
"""


def _theme_names(project_dir: Path) -> set[str]:
    return {spec.key.path[-1] for spec in theme_specs(project_dir).specs}


def test_a_new_model_file_is_parsed_into_the_theme_specs(tmp_path: Path) -> None:
    manifest_path()  # the checked-out project's manifest is fresh: the copy starts from it (mtimes kept)
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("logs", ".parse.lock"))
    manifest = project / "target" / "manifest.json"
    parsed_at = manifest.stat().st_mtime_ns
    before = _theme_names(project)
    assert manifest.stat().st_mtime_ns == parsed_at  # nothing changed: no parse
    assert "inpatient_encounters" not in before and "encounters" in before

    (project / "models" / "marts" / "encounter" / "inpatient_encounters.sql").write_text(_NEW_MODEL, encoding="utf-8")
    after = _theme_names(project)

    assert after == before | {"inpatient_encounters"}
    assert manifest.stat().st_mtime_ns > parsed_at  # parsed again, in the copy only
    assert "inpatient_encounters" not in _theme_names(DBT_PROJECT_DIR)
