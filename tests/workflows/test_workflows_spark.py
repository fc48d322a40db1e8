"""The scenario workflows' operators (quality, transcode, mask, EMPI) run on Spark DataFrames and give the same
tables as on polars: the same DWD tables (built once by the embedded engine) governed by every shipped workflow on
each engine, then every table of both lakes compared by content checksum; step figures compared too."""

from __future__ import annotations

import shutil

import pytest

from medlake.bench.parity import compare_lakes, lake_fingerprints
from medlake.config import MASK_SALT, Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.engine.spark_engine import SparkEngine
from medlake.engine.spark_session import get_spark
from medlake.lake.dwd import load_dwd_table
from medlake.lake.ods import load_source_table
from medlake.sources import SOURCES
from medlake.synth import SynthConfig, generate
from medlake.workflows import load_workflows, run_workflow
from medlake.workflows.rejects import quarantine_path
from medlake.workflows.run import WorkflowRun
from medlake.workflows.templates import TEMPLATES_DIR

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SECRETS = {MASK_SALT: "workflow-parity-salt"}
INPUT = SynthConfig(patients=120, days=2, institutions=2, history_days=2, seed=20260303, defect_rate=10)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Settings, dict[str, WorkflowRun]]]:
    root = tmp_path_factory.mktemp("workflows_spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SODA_CORE_TELEMETRY_ENABLED", "false")
        base = Settings(home=root / "polars")
        generate(INPUT, base)
        embedded = PolarsEngine()
        for spec in SOURCES:
            load_source_table(embedded, base, spec)
            load_dwd_table(embedded, base, spec)
        other = Settings(home=root / "spark", engine="spark")
        shutil.copytree(base.lake, other.lake)
        engines = {"polars": (base, embedded), "spark": (other, SparkEngine(get_spark(other), other))}
        out: dict[str, tuple[Settings, dict[str, WorkflowRun]]] = {}
        for name, (cfg, engine) in engines.items():
            patch.setenv("MEDLAKE_HOME", str(cfg.home))
            patch.setenv("MEDLAKE_ENGINE", name)
            done = {spec.name: run_workflow(spec, engine, cfg, run_id="parity", secrets=SECRETS)
                    for spec in load_workflows(TEMPLATES_DIR)}
            out[name] = (cfg, done)
        return out


def test_every_workflow_table_is_identical_on_both_engines(runs: dict) -> None:
    polars_lake, spark_lake = runs["polars"][0].lake, runs["spark"][0].lake
    assert compare_lakes(polars_lake, spark_lake) == []
    tables = lake_fingerprints(spark_lake)
    targets = {run.spec.target for run in runs["spark"][1].values()}
    assert len(targets) == 8 and all(tables[t].rows for t in targets), targets
    assert tables["governance/quarantine"].rows > 0  # the operators did set rows aside


def test_step_figures_are_the_same(runs: dict) -> None:
    def figures(engine: str) -> dict[str, list[tuple]]:
        return {name: [(s.operator, s.rows_in, s.rows_out, s.rows_rejected, str(s.status)) for s in run.steps]
                for name, run in runs[engine][1].items()}

    assert figures("spark") == figures("polars")
    rejected = sum(s.rows_rejected for run in runs["spark"][1].values() for s in run.steps)
    assert rejected > 0


def test_spark_wrote_the_targets_and_quarantine(runs: dict) -> None:
    from deltalake import DeltaTable

    cfg, done = runs["spark"]
    for path in [*(run.target_path for run in done.values()), str(quarantine_path(cfg))]:
        assert "Apache-Spark" in str(DeltaTable(path).history(1)[0].get("engineInfo")), path


def test_column_types_are_the_same(runs: dict) -> None:
    import polars as pl

    for name, run in runs["spark"][1].items():
        other = runs["polars"][1][name]
        assert pl.read_delta(run.target_path).schema == pl.read_delta(other.target_path).schema, name
