"""Engine parity: the full demo pipeline (ODS → DWD → dbt subject themes → metrics, with the DWD quality checks
and the EMPI, and the scenario workflows' quality / transcode / mask / EMPI operators) materialized by
``medlake.pipeline.materialize`` with ``MEDLAKE_ENGINE=polars`` and ``=spark`` on the same synthetic deliveries,
in two homes; every Delta table must hold the same rows (counts and content checksums).

Each engine runs in its own process (the Dagster definitions bind the engine at import), both at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from medlake.bench.parity import compare_lakes, lake_fingerprints
from medlake.config import Settings
from medlake.synth import SynthConfig, generate

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SELECTION = "*"  # the full demo pipeline: every asset of the medlake_all job, scenario workflows included
ENGINES = ("polars", "spark")
# defect_rate scaled up so that a small input still exercises quarantine, nulled fields and re-deliveries
INPUT = SynthConfig(patients=200, days=2, institutions=2, history_days=2, seed=20260101, defect_rate=10)
_RUN = (
    "import json, sys; from medlake.pipeline import materialize; o = materialize(sys.argv[1]); "
    "print(json.dumps({'success': o.success, 'failed_steps': o.failed_steps, 'checks_failed': o.checks_failed}))"
)


def _run(engine: str, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "MEDLAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "MEDLAKE_ENGINE": engine,
           "MEDLAKE_MASK_SALT": os.environ.get("MEDLAKE_MASK_SALT") or "parity-salt"}
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    log = (home / "run.log").open("w")
    return subprocess.Popen([sys.executable, "-c", _RUN, SELECTION], env=env, stdout=subprocess.PIPE, stderr=log,
                            text=True, cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="session")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    root = tmp_path_factory.mktemp("parity")
    delivered = Settings(home=root / "input")
    generate(INPUT, delivered)
    homes = {engine: Settings(home=root / engine, engine=engine) for engine in ENGINES}
    for settings in homes.values():
        shutil.copytree(delivered.landing, settings.landing)
    runs = {engine: _run(engine, settings.home) for engine, settings in homes.items()}
    for engine, proc in runs.items():
        out, _ = proc.communicate(timeout=1500)
        log = (homes[engine].home / "run.log").read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, f"{engine} run crashed:\n{log[-4000:]}"
        outcome = json.loads(out.strip().splitlines()[-1])
        assert outcome["success"] and not outcome["failed_steps"], f"{engine}: {outcome}\n{log[-4000:]}"
    return homes


def test_every_table_is_identical_on_both_engines(homes: dict[str, Settings]) -> None:
    polars_lake, spark_lake = homes["polars"].lake, homes["spark"].lake
    assert compare_lakes(polars_lake, spark_lake) == []
    tables = lake_fingerprints(spark_lake)
    for layer in ("ods", "dwd", "theme", "metric", "quarantine", "governed", "report", "share", "research"):
        assert any(t.startswith(f"{layer}/") and f.rows for t, f in tables.items()), layer
    assert tables["dwd/settlement"].rows > 500 and tables["quarantine/dwd_settlement"].rows > 0


def _writer(path: Path) -> str:
    return str(DeltaTable(str(path)).history(1)[0].get("engineInfo") or "delta-rs")


def test_each_engine_wrote_its_own_lake(homes: dict[str, Settings]) -> None:
    """The spark lake's ODS/DWD/metric tables were committed by Spark and its themes by dbt-spark; not delta-rs."""
    for table in ("ods/encounter", "dwd/encounter", "theme/encounters", "metric/visits_daily",
                  "governed/insurance_order_item_national", "research/hospital_patient_deidentified"):
        assert "Apache-Spark" in _writer(homes["spark"].lake / table), table
        assert "delta-rs" in _writer(homes["polars"].lake / table), table


@pytest.mark.parametrize("table", ["dwd/patient", "dwd/settlement", "metric/fund_payout_monthly",
                                   "metric/inpatient_length_of_stay", "metric/visits_daily", "theme/encounters",
                                   "theme/settlements", "theme/patients", "governed/insurance_settlement_review",
                                   "governed/hospital_order_item_national", "research/hospital_patient_deidentified",
                                   "report/cdc_diagnosis_icd10", "governed/health_commission_patient_index"])
def test_column_types_are_the_same(homes: dict[str, Settings], table: str) -> None:
    schemas = {e: pl.read_delta(str(homes[e].lake / table)).drop("_loaded_at", strict=False).schema for e in ENGINES}
    assert schemas["spark"] == schemas["polars"]
