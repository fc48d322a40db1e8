"""A miniature full run (ODS → DWD → dbt themes → metrics) emitting real events, then impact analysis on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from deltalake import write_deltalake

from medlake.config import Settings
from medlake.lineage.dbt import DbtRelation, emit_dbt_run
from medlake.lineage.emitter import LineageEmitter, emit_run, events_path
from medlake.lineage.graph import LineageGraph, MetricInputs
from medlake.lineage.impact import StandardChange, changes_from_diff, impact
from medlake.lineage.inventory import build_graph
from medlake.lineage.validation import validate_events_file
from medlake.standards import Registry, generate_checks, read_contract_rules
from medlake.standards.diff import DomainChange, MappingChange, StandardDiff

PATIENT = {"patient_id": ["p1"], "name": ["张三"], "id_number": ["11010819900101001X"], "sex_code": ["1"]}
ENCOUNTER = {"encounter_id": ["e1"], "patient_id": ["p1"], "encounter_type": ["inpatient"], "dept_code": ["D1"]}


@dataclass(frozen=True)
class _Element:
    value_domain: str | None


@dataclass(frozen=True)
class _Binding:
    table: str
    column: str
    element_id: str


class _Registry:
    """Stand-in for medlake.standards.Registry (bindings + element → value domain)."""

    def __init__(self) -> None:
        self.bindings = [
            _Binding("patient", "sex_code", "DE02.01.040.00"),
            _Binding("patient", "id_number", "DE02.01.030.00"),
            _Binding("encounter", "encounter_type", "DE04.30.012.00"),
        ]
        self._domains = {"DE02.01.040.00": "GB/T 2261.1", "DE02.01.030.00": None, "DE04.30.012.00": "CV04.30.012"}

    def element(self, element_id: str) -> _Element:
        return _Element(self._domains[element_id])


def _write(location: Path, columns: dict[str, list[str]]) -> None:
    write_deltalake(str(location), pa.table(columns), mode="overwrite")


def _dbt_artifacts(folder: Path) -> tuple[Path, Path]:
    def model(name: str, sql: str, deps: list[str]) -> dict:
        return {
            "unique_id": f"model.medlake.{name}", "resource_type": "model", "database": "lake", "schema": "main",
            "name": name, "alias": name, "compiled_code": sql, "depends_on": {"nodes": deps}, "columns": {},
        }

    def source(name: str) -> dict:
        return {"unique_id": f"source.medlake.dwd.{name}", "resource_type": "source", "database": "lake",
                "schema": "dwd", "name": name, "identifier": name, "columns": {}}

    manifest = {
        "sources": {f"source.medlake.dwd.{n}": source(n) for n in ("patient", "encounter")},
        "nodes": {
            "model.medlake.patient": model(
                "patient",
                'with src as (select * from "lake"."dwd"."patient") '
                "select patient_id, name, sex_code, "
                "case sex_code when '1' then '男' when '2' then '女' else '未知' end as sex_name from src",
                ["source.medlake.dwd.patient"],
            ),
            "model.medlake.encounter": model(
                "encounter",
                "select e.encounter_id, e.patient_id, e.encounter_type, e.dept_code "
                'from "lake"."dwd"."encounter" e join "lake"."dwd"."patient" p on p.patient_id = e.patient_id',
                ["source.medlake.dwd.encounter", "source.medlake.dwd.patient"],
            ),
        },
    }
    timing = [{"name": "execute", "started_at": "2025-01-01T00:00:00Z", "completed_at": "2025-01-01T00:00:01Z"}]
    results = {"results": [{"unique_id": uid, "status": "success", "timing": timing}
                           for uid in manifest["nodes"]]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "run_results.json").write_text(json.dumps(results), encoding="utf-8")
    return folder / "manifest.json", folder / "run_results.json"


def _check(kind: str, rule_id: str, check_type: str) -> dict:
    return {kind: {"name": rule_id, "qualifier": rule_id, "attributes": {"rule_id": rule_id, "check_type": check_type}}}


def _checks(folder: Path) -> Path:
    """Generated Soda contracts in medlake.standards' format."""
    folder.mkdir(parents=True)
    patient = {
        "dataset": "medlake/main/patient",
        "columns": [
            {"name": "sex_code", "checks": [_check("invalid", "patient.sex_code.in_domain", "value_domain"),
                                            _check("missing", "patient.sex_code.not_null", "required_missing")]},
            {"name": "id_number", "checks": [_check("failed_rows", "patient.id_number.check_digit", "id_check_digit")]},
        ],
        "checks": [_check("row_count", "patient.row_count", "row_count")],
    }
    encounter = {"dataset": "medlake/main/encounter", "columns": [
        {"name": "encounter_type", "checks": [_check("invalid", "encounter.encounter_type.in_domain", "value_domain")]}
    ]}
    (folder / "patient.yaml").write_text(yaml.safe_dump(patient), encoding="utf-8")
    (folder / "encounter.yaml").write_text(yaml.safe_dump(encounter), encoding="utf-8")
    return folder


def run_mini_platform(home: Path) -> Settings:
    """Materialize a tiny lake the way the asset factories will, emitting lineage for every step."""
    cfg = Settings(home=home)
    emitter = LineageEmitter(config=cfg)
    tp = cfg.table_path
    for table, data in (("patient", PATIENT), ("encounter", ENCOUNTER)):
        with emit_run(["ods", table], [], [tp("ods", table)], emitter=emitter):
            _write(tp("ods", table), data)
        lineage = {c: [(tp("ods", table), c, "TRANSFORMATION: trim/standardize")] for c in data}
        with emit_run(["dwd", table], [tp("ods", table)], [tp("dwd", table)], lineage, emitter=emitter):
            _write(tp("dwd", table), data)
    # dbt themes
    _write(tp("theme", "patient"), {**{k: PATIENT[k] for k in ("patient_id", "name", "sex_code")},
                                    "sex_name": ["男"]})
    _write(tp("theme", "encounter"), ENCOUNTER)

    def resolve(rel: DbtRelation) -> str:
        layer = "dwd" if rel.resource_type == "source" else "theme"
        return str(tp(layer, rel.name))

    manifest, run_results = _dbt_artifacts(home)
    assert emit_dbt_run(manifest, run_results, resolve, emitter=emitter) == 4
    # metrics
    patient_t, encounter_t = tp("theme", "patient"), tp("theme", "encounter")
    by_sex = {"sex_code": [(patient_t, "sex_code", "IDENTITY")],
              "patients": [(patient_t, "patient_id", "AGGREGATION"), (patient_t, "sex_code", "GROUP_BY")]}
    with emit_run(["metric", "patients_by_sex"], [patient_t], [tp("metric", "patients_by_sex")], by_sex,
                  emitter=emitter):
        _write(tp("metric", "patients_by_sex"), {"sex_code": ["1"], "patients": ["1"]})
    by_dept = {"dept_code": [(encounter_t, "dept_code", "IDENTITY")],
               "encounters": [(encounter_t, "encounter_id", "AGGREGATION")]}
    with emit_run(["metric", "encounters_by_dept"], [encounter_t], [tp("metric", "encounters_by_dept")], by_dept,
                  emitter=emitter):
        _write(tp("metric", "encounters_by_dept"), {"dept_code": ["D1"], "encounters": ["1"]})
    return cfg


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, LineageGraph]:
    for var in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE__TRANSPORT__TYPE", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = run_mini_platform(tmp_path / "home")
    graph = build_graph(cfg, registry=_Registry(), checks_dir=_checks(tmp_path / "checks" / "generated"),
                        metrics=[MetricInputs("sex_ratio", (("theme.patient", "sex_code"),))])
    return cfg, graph


def test_events_from_a_full_run_validate_against_the_openlineage_schema(lake: tuple[Settings, LineageGraph]) -> None:
    cfg, _ = lake
    events = [json.loads(line) for line in events_path(cfg).read_text(encoding="utf-8").splitlines()]
    assert validate_events_file(events_path(cfg)) == len(events) == 16
    assert {e["eventType"] for e in events} == {"START", "COMPLETE"}
    dbt_patient = next(e for e in events if e["job"]["name"] == "theme/patient" and e["eventType"] == "COMPLETE")
    lineage = dbt_patient["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert lineage["sex_name"]["inputFields"][0]["name"] == str(cfg.table_path("dwd", "patient"))
    assert lineage["sex_name"]["inputFields"][0]["field"] == "sex_code"
    assert dbt_patient["job"]["facets"]["jobType"]["integration"] == "DBT"


def test_sex_value_domain_change_reaches_exactly_what_depends_on_it(lake: tuple[Settings, LineageGraph]) -> None:
    _, graph = lake
    report = impact(StandardChange("value_domain", "GB/T 2261.1"), graph)
    assert set(report.of_kind("column")) == {
        "dwd.patient.sex_code", "theme.patient.sex_code", "theme.patient.sex_name",
        "metric.patients_by_sex.sex_code", "metric.patients_by_sex.patients",
    }
    assert set(report.of_kind("table")) == {"dwd.patient", "theme.patient"}
    assert report.of_kind("dbt_model") == ["theme/patient"]
    assert set(report.of_kind("check")) == {"patient.sex_code.in_domain", "patient.sex_code.not_null"}
    assert set(report.of_kind("metric")) == {"metric.patients_by_sex", "sex_ratio"}
    assert report.asset_keys() == [["dwd", "patient"], ["metric", "patients_by_sex"], ["theme", "patient"]]
    hops = {i.name: i.hops for i in report.items}
    assert hops["DE02.01.040.00"] == 1 and hops["dwd.patient.sex_code"] == 2 and hops["theme.patient.sex_name"] == 3
    path = next(i.path for i in report.items if i.name == "metric.patients_by_sex.patients")
    assert path == ("GB/T 2261.1", "DE02.01.040.00", "dwd.patient.sex_code", "theme.patient.sex_code",
                    "metric.patients_by_sex.patients")
    listed = " ".join(i.name for i in report.items)
    for unrelated in ("ods.", "encounter", "id_number", "patient.row_count", "theme.patient.name",
                      "dwd.patient.patient_id", "encounters_by_dept"):
        assert unrelated not in listed
    text = report.to_text()
    assert "theme/patient" in text and "[2] dwd.patient.sex_code" in text
    assert json.loads(report.to_json())["summary"]["check"] == 2


def test_element_change_diff_and_unknown_ids(lake: tuple[Settings, LineageGraph]) -> None:
    _, graph = lake
    by_element = impact(StandardChange("data_element", "DE04.30.012.00"), graph)
    assert by_element.of_kind("check") == ["encounter.encounter_type.in_domain"]
    assert "theme.encounter.encounter_type" in by_element.of_kind("column")
    assert "patient" not in " ".join(by_element.of_kind("column"))

    diff = StandardDiff(old="a", new="b", domains_changed=[DomainChange("CV04.30.012", codes_added=["9"])],
                        domains_removed=["CV99.99.999"])
    report = impact(diff, graph, preview=True)
    assert [c.id for c in report.unknown] == ["CV99.99.999"]
    assert report.of_kind("dbt_model") == ["theme/encounter"]
    assert "(preview)" in report.to_text() and "not referenced" in report.to_text()
    assert changes_from_diff(diff)[0] == StandardChange("value_domain", "CV04.30.012")
    rebound = StandardDiff(old="a", new="b", bindings_changed=["patient.sex_code: DE02.01.040.00 → -"],
                           mappings_changed=[MappingChange("H33010200001", "drug")])
    assert changes_from_diff(rebound) == [StandardChange("data_element", "DE02.01.040.00"),
                                          StandardChange("mapping_table", "H33010200001/drug")]


def test_real_standards_registry_and_generated_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With medlake.standards' own registry and generated contracts, the sex domain reaches only sex checks."""
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    registry = Registry.load("2023.1")
    checks_dir = tmp_path / "checks"
    generate_checks(registry, checks_dir)
    graph = build_graph(Settings(home=tmp_path / "home"), registry=registry, checks_dir=checks_dir)
    report = impact(StandardChange("value_domain", "GB/T 2261.1"), graph)
    assert report.of_kind("column") == ["dwd.patient.sex_code"]
    checks = report.of_kind("check")
    assert checks and all(i.path[2] == "dwd.patient.sex_code" for i in report.items if i.kind == "check")
    sex_rules = {r.rule_id for r in read_contract_rules(checks_dir / "patient.yaml") if r.column == "sex_code"}
    assert set(checks) == sex_rules


def test_graph_queries_and_persistence(lake: tuple[Settings, LineageGraph], tmp_path: Path) -> None:
    _, graph = lake
    saved = LineageGraph.load(graph.save(tmp_path / "g.json"))
    assert saved.columns("dwd.patient") == ["id_number", "name", "patient_id", "sex_code"]
    assert saved.jobs("dwd.patient") == {"reads": ["theme/encounter", "theme/patient"], "writes": ["dwd/patient"]}
    upstream = {saved.label(n) for n in saved.upstream("theme.patient.sex_name")}
    assert {"dwd.patient.sex_code", "ods.patient.sex_code", "DE02.01.040.00"} <= upstream
    assert "ods.patient.name" not in upstream
    down = {saved.label(n): d for n, d in saved.downstream("ods.patient").items()}
    assert down["dwd/patient"] == 1 and down["dwd.patient"] == 2
