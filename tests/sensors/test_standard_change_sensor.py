"""The standard-change sensor: baseline, no change, and a change to the sex value domain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagster import AssetKey, build_sensor_context

from medlake.config import Settings
from medlake.lineage.graph import CheckSpec, LineageGraph
from medlake.lineage.impact import StandardChange
from medlake.resources import LakeResource
from sensors.standard_change import StandardsState, build_standard_change_sensor


def _graph(lake: Path) -> LineageGraph:
    graph = LineageGraph(lake=lake)
    graph.add_binding("patient", "sex_code", "DE02.01.040.00", "GB/T 2261.1")
    graph.add_binding("encounter", "encounter_type", "DE04.30.012.00", "CV04.30.012")
    graph.add_event({
        "eventType": "COMPLETE", "job": {"namespace": "medlake", "name": "metric/patients_by_sex"},
        "run": {"runId": "x"},
        "outputs": [{"namespace": "file", "name": str(lake / "metric" / "patients_by_sex"), "facets": {
            "columnLineage": {"fields": {"sex_code": {"inputFields": [
                {"namespace": "file", "name": str(lake / "dwd" / "patient"), "field": "sex_code"}]}}}}}],
    })
    graph.add_check(CheckSpec("patient.sex_code.in_domain", "dwd.patient", ("sex_code",)))
    return graph


def _tick(sensor: Any, lake: LakeResource, cursor: str | None = None) -> Any:
    with build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
        return sensor.evaluate_tick(context)


def test_sensor_requests_affected_assets_and_check_regeneration(tmp_path: Path) -> None:
    standards = tmp_path / "standards"
    standards.mkdir()
    domain_file = standards / "GB_T_2261.1.csv"
    domain_file.write_text("code,label\n0,未知\n1,男\n2,女\n9,未说明\n", encoding="utf-8")
    seen: list[tuple[StandardsState, StandardsState]] = []
    current = Settings(home=tmp_path / "home", standards_dir=standards, standards_version="2024.1")

    def diff(settings: Settings, old: StandardsState, new: StandardsState) -> list[StandardChange]:
        assert settings == current  # the lake resource's settings reach every callable
        seen.append((old, new))
        changed = {f for f in new.files if old.files.get(f) != new.files[f]}
        return [StandardChange("value_domain", "GB/T 2261.1")] if "GB_T_2261.1.csv" in changed else []

    sensor = build_standard_change_sensor(
        standards_dir=lambda s: s.standards_dir, active_version=lambda s: s.standards_version, diff=diff,
        graph=lambda s, v: _graph(s.lake), check_regeneration=[["quality", "generated_checks"]],
    )
    lake = LakeResource.from_settings(current)
    first = _tick(sensor, lake)
    assert not first.run_requests and first.cursor
    same = _tick(sensor, lake, first.cursor)
    assert not same.run_requests and "unchanged" in (same.skip_message or "")

    domain_file.write_text("code,label\n0,未知\n1,男\n2,女\n5,女性改(变)为男性\n9,未说明\n", encoding="utf-8")
    changed = _tick(sensor, lake, first.cursor)
    assert len(changed.run_requests) == 1
    request = changed.run_requests[0]
    assert set(request.asset_selection) == {
        AssetKey(["dwd", "patient"]), AssetKey(["metric", "patients_by_sex"]), AssetKey(["quality", "generated_checks"])
    }
    assert AssetKey(["dwd", "encounter"]) not in request.asset_selection
    assert request.tags["medlake/standards_version"] == "2024.1"
    assert json.loads(changed.cursor)["files"] != json.loads(first.cursor)["files"]
    assert seen and seen[-1][0].version == "2024.1"


def test_sensor_skips_when_nothing_is_affected(tmp_path: Path) -> None:
    standards = tmp_path / "standards"
    standards.mkdir()
    (standards / "x.csv").write_text("a\n", encoding="utf-8")
    sensor = build_standard_change_sensor(
        standards_dir=lambda s: standards, active_version=lambda s: "v1",
        diff=lambda s, old, new: [StandardChange("value_domain", "CV99")], graph=lambda s, v: _graph(s.lake),
    )
    lake = LakeResource.from_settings(Settings(home=tmp_path / "home"))
    first = _tick(sensor, lake)
    (standards / "x.csv").write_text("b\n", encoding="utf-8")
    result = _tick(sensor, lake, first.cursor)
    assert not result.run_requests and "nothing affected" in (result.skip_message or "")
