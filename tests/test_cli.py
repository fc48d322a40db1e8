"""The command line: every command registered without loading the capability libraries, listings that fit an
80-column terminal, ``--json`` that parses, and definitions that load without the engines they do not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from deltalake import write_deltalake
from rich.cells import cell_len
from typer.testing import CliRunner

from medlake.cli import _register, app
from medlake.config import Settings
from medlake.quality.runner import CheckResult, append_results
from medlake.standards import Registry, generate_checks

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"run", "status", "demo", "synth", "init", "impact", "catalog", "standards", "empi", "lineage", "maintain",
            "classify", "classification", "access", "serve", "audit", "users"}
SUBCOMMANDS = {
    "users": {"add", "list", "remove"},
    "standards": {"list", "show", "diff", "generate-checks", "sync-reference"},
    "empi": {"link", "decide", "evaluate", "review"},
    "lineage": {"build", "downstream", "upstream", "columns", "jobs", "validate"},
    "classification": {"suggest", "list", "set", "risk"},
    "access": {"request", "approve", "reject", "revoke", "list"},
}
# What `medlake --help` must not import: the capability libraries and the orchestration stack.
HEAVY = ["dagster", "dagster_dbt", "dbt", "polars", "pyarrow", "duckdb", "deltalake", "pypinyin", "splink",
         "networkx", "openlineage", "pyspark", "soda_core", "rapidfuzz"]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, check=False)


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    _register()
    return app


def _names(group: typer.Typer) -> set[str]:
    return {c.name for c in group.registered_commands} | {g.name for g in group.registered_groups}


def test_help_lists_every_command_and_subcommand(cli: typer.Typer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert _names(cli) == COMMANDS
    listed = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert listed >= COMMANDS
    for group, expected in SUBCOMMANDS.items():
        sub = runner.invoke(cli, [group, "--help"], env={"COLUMNS": "80"})
        assert sub.exit_code == 0, sub.output
        assert expected <= {line.split()[1] for line in sub.output.splitlines()
                            if line.startswith("│ ") and len(line.split()) > 1}
    for command in ("catalog", "status", "impact"):
        assert "--json" in runner.invoke(cli, [command, "--help"], env={"COLUMNS": "80"}).output


def test_registering_the_cli_imports_no_capability_library() -> None:
    probe = _python("import sys\nfrom medlake.cli import _register\n_register()\n"
                    f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_definitions_on_polars_load_neither_spark_nor_dbt_nor_the_engines_libraries() -> None:
    from medlake.dbt.specs import theme_specs

    theme_specs()  # the cached specs exist (a fresh checkout computes them once, with dagster-dbt)
    probe = _python("import sys\nimport medlake.definitions\n"
                    "print([m for m in ('pyspark', 'dagster_pyspark', 'delta', 'dbt', 'dagster_dbt', 'pypinyin',"
                    " 'splink', 'networkx', 'openlineage', 'duckdb', 'soda_core') if m in sys.modules])",
                    MEDLAKE_ENGINE="polars")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    cfg = Settings(home=tmp_path / "home")
    write_deltalake(str(cfg.table_path("dwd", "patient")),
                    pa.table({"patient_id": ["p1", "p2"], "sex_code": ["1", "2"]}))
    write_deltalake(str(cfg.table_path("metric", "inpatient_length_of_stay")), pa.table({"days": [3.5]}))
    append_results([CheckResult(rule_id="patient.sex_code.value_domain", table="patient", column="sex_code",
                                check_type="value_domain", category="conformance", subcategory="value",
                                severity="warn", outcome="warn", failed_rows=1)], cfg)
    generate_checks(Registry.load(), tmp_path / "checks" / "generated")
    return cfg


LISTINGS = [
    ["catalog"],
    ["status"],
    ["standards", "list"],
    ["impact", "--domain", "GB/T 2261.1"],
    ["lineage", "downstream", "dwd.patient.sex_code"],
    ["lineage", "upstream", "dwd.patient.sex_code"],
    ["lineage", "columns", "dwd.patient"],
    ["lineage", "jobs", "dwd.patient"],
]


def test_listings_fit_80_columns_and_json_parses(cli: typer.Typer, lake: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["lineage", "build"]).exit_code == 0
    for command in LISTINGS:
        text = runner.invoke(cli, command, env={"COLUMNS": "80"})
        assert text.exit_code == 0, (command, text.output)
        assert text.output.strip(), command
        too_wide = [line for line in text.output.splitlines() if cell_len(line) > 80]
        assert too_wide == [], (command, too_wide)
        as_json = runner.invoke(cli, [*command, "--json"], env={"COLUMNS": "80"})
        assert as_json.exit_code == 0, (command, as_json.output)
        json.loads(as_json.output)
    catalog = json.loads(runner.invoke(cli, ["catalog", "--json"]).output)
    assert {e["name"] for e in catalog} == {"dwd.patient", "metric.inpatient_length_of_stay"}
    patient = next(e for e in catalog if e["name"] == "dwd.patient")
    assert patient["description"].startswith("患者基本信息") and patient["last_check"]["outcome"] == "failed"
    status = json.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert status["checks"] == {"dwd.patient": {"checks": 1, "failed": 1}}
    assert [e["columns"] for e in status["tables"] if e["name"] == "dwd.patient"] == [["patient_id", "sex_code"]]
    standards = json.loads(runner.invoke(cli, ["standards", "list", "--json"]).output)
    assert standards["version"] == standards["releases"][-1]
    assert "DE02.01.040.00" in {e["id"] for e in standards["elements"]}
    down = json.loads(runner.invoke(cli, ["lineage", "downstream", "dwd.patient.sex_code", "--json"]).output)
    assert {"check"} <= {n["kind"] for n in down} and all(n["hops"] >= 1 for n in down)
    columns = json.loads(runner.invoke(cli, ["lineage", "columns", "dwd.patient", "--json"]).output)
    assert {"patient_id", "sex_code"} <= set(columns) and columns == sorted(columns)


def test_catalog_cuts_descriptions_at_80_columns_and_shows_more_on_a_wide_terminal(
    cli: typer.Typer, lake: Settings
) -> None:
    runner = CliRunner()
    narrow = runner.invoke(cli, ["catalog"], env={"COLUMNS": "80"}).output
    wide = runner.invoke(cli, ["catalog"], env={"COLUMNS": "200"}).output
    patient_narrow = next(line for line in narrow.splitlines() if line.startswith("dwd.patient"))
    assert patient_narrow.rstrip().endswith("…") and "owner" not in narrow
    assert "owner" in wide and "scenario" in wide
    assert len(narrow.splitlines()) == len(wide.splitlines())  # one line per table either way: nothing wraps
