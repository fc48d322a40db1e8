"""The subject themes defined from the cached specs are the themes ``@dbt_assets`` defines, and dbt runs on them
through the equivalent ``@dbt_assets`` definition (subset the same way)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import medlake.dbt.specs as specs
from assets.themes import theme_assets
from medlake.dbt.build import _dbt_view
from medlake.dbt.project import MANIFEST_PATH, manifest_path
from medlake.dbt.translator import dbt_theme_assets


def test_cached_specs_define_what_dbt_assets_defines() -> None:
    real = dbt_theme_assets()
    assert (theme_assets.op.name, theme_assets.op.tags) == (real.op.name, real.op.tags)
    assert theme_assets.keys_by_output_name == real.keys_by_output_name
    assert {c.key for c in theme_assets.check_specs} == {c.key for c in real.check_specs} != set()
    assert {c.key: c.blocking for c in theme_assets.check_specs} == {c.key: c.blocking for c in real.check_specs}
    for key in real.keys:
        ours, theirs = theme_assets.specs_by_key[key], real.specs_by_key[key]
        assert {d.asset_key for d in ours.deps} == {d.asset_key for d in theirs.deps}
        assert (ours.description, ours.group_name, ours.code_version, dict(ours.tags), ours.kinds) == (
            theirs.description, theirs.group_name, theirs.code_version, dict(theirs.tags), theirs.kinds)
        assert ours.metadata["dagster_dbt/unique_id"] == theirs.metadata["dagster_dbt/unique_id"]
        assert "dagster_dbt/manifest" not in ours.metadata  # dagster-dbt's run-time objects are not cached


def test_the_cache_is_used_until_the_manifest_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(manifest_path().read_bytes())
    monkeypatch.setattr(specs, "manifest_path", lambda _project_dir: manifest)
    computed = specs.theme_specs()
    cache = tmp_path / "medlake_theme_specs.json"
    stored = json.loads(cache.read_text(encoding="utf-8"))
    cache.write_text(json.dumps({**stored, "specs": stored["specs"][:1]}), encoding="utf-8")
    assert len(specs.theme_specs().specs) == 1  # same manifest: the cache is read, not recomputed
    manifest.write_bytes(manifest.read_bytes() + b"\n")
    assert [s.key for s in specs.theme_specs().specs] == [s.key for s in computed.specs]
    assert MANIFEST_PATH.is_file()


def test_dbt_sees_the_dbt_assets_definition_subset_like_the_step() -> None:
    from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets, get_subset_selection_for_context

    patients = next(k for k in theme_assets.keys if k.path[-1] == "patients")
    checks = {c.key for c in theme_assets.check_specs if c.asset_key == patients}
    executing = theme_assets.subset_for({patients}, checks)
    step = SimpleNamespace(assets_def=executing, selected_asset_keys={patients}, selected_asset_check_keys=checks,
                           run_id="r1")
    view = _dbt_view(step)  # type: ignore[arg-type]
    assert set(view.assets_def.keys) == {patients} and view.run_id == "r1"
    manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([view.assets_def])
    selection, _ = get_subset_selection_for_context(view, manifest, "fqn:*", None, None, translator, None)
    assert selection[0] == "--select" and selection[1].split() == ["medlake.marts.patient.patients"]
    whole = SimpleNamespace(assets_def=theme_assets, selected_asset_keys=set(theme_assets.keys),
                            selected_asset_check_keys={c.key for c in theme_assets.check_specs})
    assert _dbt_view(whole).assets_def is dbt_theme_assets()  # type: ignore[arg-type]
