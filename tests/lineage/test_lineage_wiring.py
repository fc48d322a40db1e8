"""OpenLineage emitted by the real asset graph (ODS → DWD → dbt themes → metrics), impact analysis over it, and the
standard-change sensor as wired in medlake/definitions.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from assets.dwd import dwd_assets
from assets.metrics import metric_assets
from assets.ods import ods_assets
from assets.themes import theme_assets
from checks import GENERATED_DIR
from medlake.config import Settings
from medlake.lineage.derivation import metric_input_columns, workflow_column_lineage
from medlake.lineage.emitter import events_path
from medlake.lineage.impact import StandardChange
from medlake.lineage.materialization import materialization_lineage
from medlake.lineage.standards_watch import standards_changes, standards_lineage_graph
from medlake.lineage.validation import event_errors
from medlake.metrics import METRICS
from medlake.resources import LakeResource, resources_for
from medlake.standards.registry import DATA_DIR
from sensors.standard_change import StandardsState, build_standard_change_sensor, standards_state
from tests.conftest import deliver
from tests.lake.test_ods import PATIENTS

SEX_DOMAIN = "GB/T 2261.1"
ENCOUNTERS = [
    {"encounter_id": "E1", "patient_id": "P1", "encounter_type": "住院", "dept_code": "D1", "dept_name": "内科",
     "admit_time": "2026-01-01 08:00:00", "discharge_time": "2026-01-04 10:00:00", "doctor_id": "DR1",
     "updated_at": "2026-01-04 10:00:00"},
    {"encounter_id": "E2", "patient_id": "P2", "encounter_type": "门诊", "dept_code": "D2", "dept_name": "儿科",
     "admit_time": "2026-01-01 09:00:00", "discharge_time": "", "doctor_id": "DR2", "updated_at": "2026-01-01 09:00:00"},
]
DIAGNOSES = [{"encounter_id": "E1", "diag_seq": "1", "diag_code": "I10", "diag_name": "高血压", "diag_type": "1",
              "diag_time": "2026-01-01 08:30:00", "updated_at": "2026-01-01 08:30:00"}]
ORDERS = [{"order_id": "O1", "encounter_id": "E1", "item_category": "drug", "local_item_code": "YP001",
           "item_name": "阿司匹林", "quantity": "2", "unit_price": "10.5", "amount": "21",
           "order_time": "2026-01-01 09:00:00", "updated_at": "2026-01-01 09:00:00"}]
LABS = [{"result_id": "L1", "encounter_id": "E1", "test_code": "GLU", "test_name": "葡萄糖", "result_value": "5.6",
         "unit": "mmol/L", "ref_low": "3.9", "ref_high": "6.1", "report_time": "2026-01-01 10:00:00",
         "updated_at": "2026-01-01 10:00:00"}]
SETTLEMENTS = [{"setl_id": "S1", "psn_no": "N1", "psn_name": "张三", "id_number": "", "medins_code": "H1",
                "encounter_id": "E1", "setl_type": "inpatient", "setl_time": "2026-01-04 11:00:00",
                "begin_date": "2026-01-01", "end_date": "2026-01-04", "total_amount": "100", "fund_paid": "70",
                "self_paid": "30", "setl_status": "1", "revision": "1", "updated_at": "2026-01-04 11:00:00"}]


@dataclass
class GraphRun:
    settings: Settings
    events: list[dict[str, Any]]
    materialized: list[str]
    run_id: str


@pytest.fixture(scope="session")
def graph_run(tmp_path_factory: pytest.TempPathFactory) -> GraphRun:
    home = tmp_path_factory.mktemp("wiring") / "medlake"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEDLAKE_HOME", str(home))
        env.delenv("OPENLINEAGE_URL", raising=False)
        env.delenv("OPENLINEAGE_DISABLED", raising=False)
        settings = Settings(home=home)
        deliver(settings, "H1", "2026-01-01", {"patient": PATIENTS, "encounter": ENCOUNTERS, "diagnosis": DIAGNOSES,
                                               "order_item": ORDERS, "lab_result": LABS})
        deliver(settings, "YB330100", "2026-01-04", {"settlement": SETTLEMENTS}, fmt="jsonl")
        result = materialize(
            [*ods_assets, *dwd_assets, theme_assets, *metric_assets],
            resources=resources_for(settings), instance=DagsterInstance.ephemeral(),
        )
        assert result.success
        materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
        lines = events_path(settings).read_text(encoding="utf-8").splitlines()
    # the environment is restored before the tests run (a session fixture must not leak it to other modules)
    return GraphRun(settings, [json.loads(line) for line in lines if line.strip()], materialized, result.run_id)


def _complete(run: GraphRun, job: str) -> dict[str, Any]:
    return next(e for e in run.events if e["job"]["name"] == job and e["eventType"] == "COMPLETE")


def _inputs_of(event: dict[str, Any], column: str) -> set[tuple[str, str]]:
    fields = event["outputs"][0]["facets"]["columnLineage"]["fields"]
    return {(Path(f["name"]).relative_to(Path(f["name"]).parents[1]).as_posix(), f["field"])
            for f in fields[column]["inputFields"]}


@pytest.mark.slow
def test_every_materialized_asset_has_start_and_complete_and_every_event_is_valid(graph_run: GraphRun) -> None:
    states: dict[str, list[str]] = {}
    for event in graph_run.events:
        states.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert "theme/patients" in graph_run.materialized and "metric/visits_by_sex_age" in graph_run.materialized
    for asset in graph_run.materialized:
        assert states.get(asset) == ["START", "COMPLETE"], asset
    assert all(event_errors(e) == [] for e in graph_run.events)
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in graph_run.events} == {graph_run.run_id}


@pytest.mark.slow
def test_column_lineage_runs_from_landing_files_through_dbt_to_metrics(graph_run: GraphRun) -> None:
    ods = _complete(graph_run, "ods/patient")
    assert [Path(i["name"]).name for i in ods["inputs"]] == ["patient.csv"]
    assert _inputs_of(ods, "sex_code") == {("2026-01-01/patient.csv", "sex_code")}
    dwd = _complete(graph_run, "dwd/patient")
    assert _inputs_of(dwd, "institution_code") == {("ods/patient", "_institution")}
    dwd_sex = dwd["outputs"][0]["facets"]["columnLineage"]["fields"]["sex_code"]["inputFields"][0]
    assert dwd_sex["transformations"][0]["subtype"] == "TRANSFORMATION"
    dbt_patients = _complete(graph_run, "theme/patients")
    assert dbt_patients["job"]["facets"]["jobType"]["integration"] == "DBT"
    assert _inputs_of(dbt_patients, "sex_code") == {("dwd/patient", "sex_code")}
    assert _inputs_of(_complete(graph_run, "theme/encounters"), "sex_code") == {("dwd/patient", "sex_code")}
    metric = _complete(graph_run, "metric/visits_by_sex_age")
    assert ("theme/encounters", "sex_code") in _inputs_of(metric, "sex_code")
    subtypes = {f["field"]: f["transformations"][0]["subtype"]
                for f in metric["outputs"][0]["facets"]["columnLineage"]["fields"]["visits"]["inputFields"]}
    assert subtypes["sex_code"] == "GROUP_BY"
    assert metric["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2

    graph = standards_lineage_graph(graph_run.settings, checks_dir=GENERATED_DIR)
    upstream = {graph.label(n) for n in graph.upstream("metric.visits_by_sex_age.sex_code")}
    assert {"theme.encounters.sex_code", "dwd.patient.sex_code", "ods.patient.sex_code"} <= upstream


@pytest.mark.slow
def test_medlake_impact_of_the_sex_domain_over_the_run(graph_run: GraphRun) -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "medlake"), "impact", "--domain", SEX_DOMAIN,
         "--checks-dir", str(GENERATED_DIR), "--json"],
        capture_output=True, text=True, env={**os.environ, "MEDLAKE_HOME": str(graph_run.settings.home)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    items = {(i["kind"], i["name"]) for i in json.loads(out.stdout)["items"]}
    assert {("column", "dwd.patient.sex_code"), ("table", "theme.patients"), ("table", "theme.encounters"),
            ("dbt_model", "theme/patients"), ("dbt_model", "theme/encounters"),
            ("metric", "metric.visits_by_sex_age")} <= items
    assert any(kind == "check" and name.startswith("patient.sex_code.") for kind, name in items)
    names = {name for _, name in items}
    assert not any("fund_payout_monthly" in n or "visits_daily" in n for n in names)


@pytest.mark.slow
def test_metric_lineage_declarations_match_what_compute_reads_and_writes(graph_run: GraphRun) -> None:
    for spec in METRICS:
        theme = pl.read_delta(str(graph_run.settings.table_path("theme", spec.source)))
        declared = nw.from_native(theme.select(metric_input_columns(spec)).lazy())
        try:
            produced = spec.compute(declared).collect_schema().names()
        except pl.exceptions.ColumnNotFoundError as exc:
            pytest.fail(f"{spec.name}: compute reads a column its lineage does not declare ({exc})")
        assert sorted(produced) == sorted([*spec.grain, *spec.measures]), spec.name


def test_workflow_lineage_follows_mask_and_transcode_steps() -> None:
    from medlake.workflows.spec import load_workflow

    templates = Path(__file__).resolve().parents[2] / "medlake" / "workflows" / "templates"
    masked = workflow_column_lineage(load_workflow(templates / "cdc" / "cdc_case_report_patient.yaml",
                                                   check_operators=False),
                                     "/lake/dwd/patient", ["patient_id", "name", "region_code", "address"])
    assert "address" not in masked
    assert masked["region_code"] == [("/lake/dwd/patient", "region_code", "IDENTITY")]
    assert masked["patient_id"] == [("/lake/dwd/patient", "patient_id", "TRANSFORMATION: mask hash")]
    coded = workflow_column_lineage(load_workflow(templates / "insurance" / "insurance_order_item_national.yaml",
                                                  check_operators=False),
                                    "/lake/dwd/order_item", ["institution_code", "item_category", "local_item_code"])
    assert {(c, t.split(":")[0]) for _, c, t in coded["national_code"]} == {
        ("local_item_code", "TRANSFORMATION"), ("institution_code", "JOIN"), ("item_category", "JOIN")}


def test_lineage_failure_never_breaks_the_materialization(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Context:
        asset_key = AssetKey(["dwd", "patient"])
        job_name, run_id = "job", str(uuid.uuid4())

    def broken() -> dict[str, Any]:
        raise RuntimeError("derivation bug")

    done = []
    with materialization_lineage(Context(), Settings(home=tmp_path), ["/x"], ["/y"], broken):
        done.append(1)
    with materialization_lineage(Context(), Settings(home=tmp_path), ["/x"], ["/y"],
                                 {"c": [("/x", "c", "NOT_A_SUBTYPE")]}):
        done.append(2)
    assert done == [1, 2] and "derivation bug" in caplog.text and "NOT_A_SUBTYPE" in caplog.text
    with pytest.raises(ValueError, match="body"), materialization_lineage(Context(), Settings(home=tmp_path)):
        raise ValueError("body")
    fail = [json.loads(line) for line in events_path(Settings(home=tmp_path)).read_text().splitlines()][-1]
    assert fail["eventType"] == "FAIL"


def _standards_copy(tmp_path: Path) -> Path:
    root = tmp_path / "standards"
    shutil.copytree(DATA_DIR, root)
    return root


def test_edited_standards_files_map_to_what_they_define(tmp_path: Path) -> None:
    root = _standards_copy(tmp_path)
    current = Settings(home=tmp_path / "home", standards_dir=root)
    before = standards_state(root, "2024.1")
    with (root / "2023.1" / "domains" / "gbt2260.csv").open("a", encoding="utf-8") as fh:
        fh.write("330199,测试区\n")
    mapping = root / "2023.1" / "mappings" / "H33010200001" / "drug.csv"
    mapping.write_text(mapping.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    after = standards_state(root, "2024.1")
    assert standards_changes(current, before, after) == [
        StandardChange("value_domain", "GB/T 2260"), StandardChange("mapping_table", "H33010200001/drug")]
    assert standards_changes(current, StandardsState("2023.1", after.files), after)  # a version switch is diffed


@pytest.mark.slow
def test_sensor_requests_a_run_when_the_sex_domain_changes(graph_run: GraphRun, tmp_path: Path) -> None:
    from medlake.lineage.standards_watch import active_standards_version, standards_data_dir

    root = _standards_copy(tmp_path)
    lake = LakeResource.from_settings(replace(graph_run.settings, standards_dir=root))
    sensor = build_standard_change_sensor(
        standards_dir=standards_data_dir, active_version=active_standards_version, diff=standards_changes,
        graph=lambda current, v: standards_lineage_graph(current, v, checks_dir=GENERATED_DIR),
        check_regeneration=[["governance", "generated_checks"]],
    )

    def tick(cursor: str | None) -> Any:
        with build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
            return sensor.evaluate_tick(context)

    first = tick(None)
    assert not first.run_requests
    domains = root / "2023.1" / "value_domains.yaml"
    domains.write_text(domains.read_text(encoding="utf-8").replace("'9': 未说明的性别}", "'9': 未说明的性别, '5': 变性}"),
                       encoding="utf-8")
    changed = tick(first.cursor)
    assert len(changed.run_requests) == 1
    selection = set(changed.run_requests[0].asset_selection)
    assert {AssetKey(["dwd", "patient"]), AssetKey(["theme", "patients"]), AssetKey(["metric", "visits_by_sex_age"]),
            AssetKey(["governance", "generated_checks"])} <= selection


@pytest.mark.slow  # importing the definitions parses the dbt manifest and the check contracts
def test_definitions_register_the_standard_change_sensor_and_keep_governance_out_of_the_full_run() -> None:
    from medlake.definitions import defs

    assert defs.resolve_sensor_def("standard_change_sensor")
    job = defs.resolve_job_def("medlake_all")
    assert AssetKey(["governance", "generated_checks"]) not in job.asset_layer.executable_asset_keys
    assert AssetKey(["dwd", "patient"]) in job.asset_layer.executable_asset_keys
