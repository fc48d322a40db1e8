"""Catalog entries from the Delta log, last check outcome, search, and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from deltalake import write_deltalake
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.lineage.catalog import catalog, search
from medlake.lineage.cli import catalog_command, impact_command, lineage_app
from medlake.quality.runner import CheckResult, append_results
from medlake.standards import Registry, generate_checks


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    cfg = Settings(home=tmp_path / "home")
    patient = cfg.table_path("dwd", "patient")
    write_deltalake(str(patient), pa.table({"patient_id": ["p1", "p2"], "sex_code": ["1", "2"]}))
    write_deltalake(str(patient), pa.table({"patient_id": ["p3"], "sex_code": ["9"]}), mode="append")
    write_deltalake(str(cfg.table_path("dwd", "settlement")), pa.table({"setl_id": ["s1"], "fund_paid": [1.0]}))
    # two check runs of dwd.patient (the older one failing everything) and one of dwd.settlement, written by the
    # quality runner's own writer; the newer patient run has one rule failing in two institutions
    def result(table: str, rule: str, outcome: str, by_institution: dict[str, int] | None = None) -> CheckResult:
        return CheckResult(rule_id=rule, table=table, column=None, check_type="t", category="conformance",
                           subcategory="value", severity="warn", outcome=outcome,
                           by_institution=by_institution or {})

    append_results([result("patient", "patient.a", "fail"), result("patient", "patient.b", "fail")], cfg)
    append_results([result("patient", "patient.a", "pass"),
                    result("patient", "patient.b", "warn", {"H1": 2, "H2": 1}),
                    result("settlement", "settlement.a", "pass")], cfg)
    return cfg


def test_catalog_reads_rows_freshness_classification_and_last_check(home: Settings) -> None:
    entries = {e.name: e for e in catalog(home)}
    assert set(entries) == {"dwd.patient", "dwd.settlement"}
    patient = entries["dwd.patient"]
    assert patient.rows == 3 and patient.version == 1 and patient.freshness is not None
    assert (patient.scenario, patient.category, patient.grade) == ("patient", "personal attributes", 4)
    assert patient.description.startswith("患者基本信息")
    assert patient.last_check == {**patient.last_check, "checks": 2, "failed": 1, "outcome": "failed"}
    assert entries["dwd.settlement"].last_check["outcome"] == "passed"
    assert entries["dwd.settlement"].category == "medical payment"
    assert [e.name for e in search(list(entries.values()), "SEX_CODE")] == ["dwd.patient"]
    assert [e.name for e in search(list(entries.values()), "settle")] == ["dwd.settlement"]


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("catalog")(catalog_command)
    app.command("impact")(impact_command)
    app.add_typer(lineage_app, name="lineage")
    return app


def test_cli_catalog_impact_and_graph_queries(home: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(_app(), ["catalog", "fund_paid", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [e["name"] for e in json.loads(listed.output)] == ["dwd.settlement"]

    generate_checks(Registry.load(), tmp_path / "checks" / "generated")
    built = runner.invoke(_app(), ["lineage", "build"])
    assert built.exit_code == 0, built.output
    down = runner.invoke(_app(), ["lineage", "downstream", "dwd.patient.sex_code"])
    assert down.exit_code == 0, down.output
    assert "[1] check" in down.output and "id_number" not in down.output
    cols = runner.invoke(_app(), ["lineage", "columns", "dwd.patient"])
    assert "sex_code" in cols.output.split() and "patient_id" in cols.output.split()
    assert runner.invoke(_app(), ["impact"]).exit_code == 2
    for args in (["--domain", "GB/T 2261.1"], ["--domain", "GB/T 2261.1", "--preview", "2023.1"]):
        result = runner.invoke(_app(), ["impact", *args, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["preview"] == ("--preview" in args)
        assert {i["name"] for i in report["items"] if i["kind"] == "column"} == {"dwd.patient.sex_code"}
    text = runner.invoke(_app(), ["impact", "--element", "DE02.01.040.00"]).output
    assert "[1] dwd.patient.sex_code" in text
