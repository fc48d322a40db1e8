"""Two Settings with different homes, materialized one after the other in one process, with no MEDLAKE_* variable
in the environment: each home's lake holds its own tables and rows, and nothing is written to the other home (or
to the default ``./.medlake`` a fallback to the environment would use)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.dwd import dwd_assets
from assets.ods import ods_assets
from checks import build_asset_checks
from medlake.config import Settings
from medlake.layers import Layer
from medlake.quality.runner import RESULTS_TABLE
from medlake.resources import resources_for
from tests.conftest import deliver

_PATIENTS = [
    {"patient_id": f"P{i}", "name": "张三", "id_number": "", "sex_code": "1", "birth_date": "1980-01-01",
     "phone": "", "region_code": "110105", "address": "", "updated_at": f"2026-01-01 0{i}:00:00"}
    for i in range(1, 6)
]


def _patient_assets() -> list:  # type: ignore[type-arg]
    ods = next(a for a in ods_assets if AssetKey(["ods", "patient"]) in a.keys)
    dwd = next(a for a in dwd_assets if AssetKey(["dwd", "patient"]) in a.keys)
    checks = [c for c in build_asset_checks(lambda t: AssetKey([*Layer.DWD.key_prefix, t]))
              if c.node_def.name == "quality_patient"]
    return [ods, dwd, *checks]


def _files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()}


def _rows(settings: Settings, layer: str, table: str) -> int:
    return pl.read_delta(str(settings.table_path(layer, table))).height


def test_two_homes_materialize_side_by_side_without_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(("MEDLAKE_", "OPENLINEAGE_")) or n == "DAGSTER_HOME"]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # a fallback to the environment's settings would write below ./.medlake
    first, second = Settings(home=tmp_path / "a"), Settings(home=tmp_path / "b")
    deliver(first, "H1", "2026-01-01", {"patient": _PATIENTS})
    deliver(second, "H2", "2026-01-02", {"patient": _PATIENTS[:2]})
    assets = _patient_assets()
    delivered_to_second = _files(second.home)

    ran_first = materialize(assets, resources=resources_for(first), instance=DagsterInstance.ephemeral())
    assert ran_first.success
    assert _files(second.home) == delivered_to_second  # the first run wrote nothing below the second home
    written_to_first = _files(first.home)

    ran_second = materialize(assets, resources=resources_for(second), instance=DagsterInstance.ephemeral())
    assert ran_second.success
    assert _files(first.home) == written_to_first  # nor the second run below the first home

    for settings, run, rows, institution in ((first, ran_first, 5, "H1"), (second, ran_second, 2, "H2")):
        assert _rows(settings, "ods", "patient") == rows
        dwd = pl.read_delta(str(settings.table_path("dwd", "patient")))
        assert dwd.height == rows and set(dwd["institution_code"]) == {institution}
        assert {p.parent.name for p in (settings.lake / "dwd").glob("*/_delta_log")} == {"patient"}
        assert _rows(settings, *RESULTS_TABLE) > 0  # the asset checks wrote their results to this home's lake
        (dwd_event,) = [m for m in run.asset_materializations_for_node("dwd__patient")]
        assert dwd_event.metadata["table_path"].value == str(settings.table_path("dwd", "patient"))
    assert not (tmp_path / ".medlake").exists()
