"""What `medlake demo` / `medlake run` print: telemetry off in the instance, the progress view, one reconciliation
line per ODS table, and no Soda plugin error."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from rich.console import Console
from rich.progress import Progress

from assets.ods import _not_reconciled
from medlake.config import Settings
from medlake.lake.ods import FileLoad
from medlake.pipeline import prepare_instance
from medlake.progress import RunProgress, step_label


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_a_new_instance_has_telemetry_off(dagster_home: Path, tmp_path: Path) -> None:
    assert prepare_instance(Settings(home=tmp_path)) == dagster_home
    assert yaml.safe_load((dagster_home / "dagster.yaml").read_text()) == {"telemetry": {"enabled": False}}


def test_an_existing_dagster_yaml_keeps_its_settings(dagster_home: Path, tmp_path: Path) -> None:
    dagster_home.mkdir()
    mine = "# my instance\nrun_monitoring:\n  enabled: true\n  poll_interval_seconds: 30"  # no final newline
    (dagster_home / "dagster.yaml").write_text(mine)
    prepare_instance(Settings(home=tmp_path))
    prepare_instance(Settings(home=tmp_path))  # idempotent
    text = (dagster_home / "dagster.yaml").read_text()
    assert text.startswith(mine + "\n")
    assert yaml.safe_load(text) == {"run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
                                    "telemetry": {"enabled": False}}


def test_a_deliberate_telemetry_choice_stands(dagster_home: Path, tmp_path: Path) -> None:
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    prepare_instance(Settings(home=tmp_path))
    assert (dagster_home / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


@pytest.mark.parametrize(("step", "label"), [
    ("ods__patient", "ods · patient"), ("dwd__master_patient_index", "dwd · master_patient_index"),
    ("quality_settlement", "checks · settlement"), ("theme_assets", "theme"),
    ("governed__health_commission_patient_index", "governed · health_commission_patient_index"),
])
def test_step_labels_name_the_layer(step: str, label: str) -> None:
    assert step_label(step) == label


def _event(kind: str, step: str) -> SimpleNamespace:
    return SimpleNamespace(is_dagster_event=True, dagster_event=SimpleNamespace(event_type_value=kind), step_key=step)


def test_progress_counts_finished_steps_failures_and_warnings() -> None:
    view = RunProgress(Progress(console=Console(file=open("/dev/null", "w"))))  # noqa: SIM115
    view.start(3)
    for entry in [_event("STEP_START", "ods__patient"), _event("STEP_SUCCESS", "ods__patient"),
                  SimpleNamespace(is_dagster_event=False, level=logging.WARNING),
                  SimpleNamespace(is_dagster_event=False, level=logging.INFO),
                  _event("STEP_START", "dwd__patient"), _event("STEP_FAILURE", "dwd__patient"),
                  _event("STEP_SKIPPED", "dwd__master_patient_index")]:
        view(entry)
    task = view.progress.tasks[0]
    assert (task.completed, task.total, view.warnings, view.failed) == (3, 3, 1, ["dwd__patient"])
    assert task.description == "running dwd · patient"


def test_not_reconciled_files_are_one_markdown_row_each() -> None:
    files = [FileLoad("H1", "b1", "settlement", "H1/2026-01-01/settlement.csv", "x", 10, status="mismatch",
                      message="amount sums differ (manifest {'a': '1|2'})"),
             FileLoad("H2", "b2", "settlement", "H2/2026-01-01/settlement.csv", "y", 5, status="rejected",
                      message="no header")]
    rows = _not_reconciled(files).value.splitlines()
    assert rows[2:] == ["| H1/2026-01-01/settlement.csv | mismatch | amount sums differ (manifest {'a': '1/2'}) |",
                        "| H2/2026-01-01/settlement.csv | rejected | no header |"]


def test_soda_duckdb_source_loads_without_a_plugin_error() -> None:
    """In a fresh interpreter (Soda loads its plugins once, on first import)."""
    code = ("import pyarrow as pa; from medlake.engine.polars_engine import PolarsEngine; "
            "con = PolarsEngine().check_session('t', pa.table({'a': [1]})); "
            "print(type(con.soda_data_source('medlake')).__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "DuckDBDataSourceImpl"
    assert "Failed to load entry point" not in done.stderr
