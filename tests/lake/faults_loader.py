"""The write paths of the pipeline, stage by stage, without Dagster: what tests/lake/test_faults.py kills and reruns.

``python tests/lake/faults_loader.py HOME STAGE...`` runs the stages in order on ``HOME`` (``MEDLAKE_CRASH_POINT`` in the
environment arms a crash point). Each stage calls the same library functions the assets call, so a stage reaches
its crash points in a few seconds instead of a full ``medlake run``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import narwhals as nw
import pyarrow.parquet as pq

from medlake.config import MASK_SALT, Settings
from medlake.engine import Engine, get_engine
from medlake.lake.dwd import dwd_path, load_dwd_table
from medlake.lake.ods import load_source_table
from medlake.sources import SOURCES

__all__ = ["STAGES", "run_stages"]

WORKFLOW = "hospital_patient_research.yaml"  # quality (sets rows aside) → mask → overwrite of its target
SALT = "faults-salt"  # the mask salt: tests/lake/test_faults.py sets the same value for the Dagster runs it starts
THEME = "patients_landed"  # a Delta table landed by the dbt-duckdb plugin


def _ods(engine: Engine, settings: Settings) -> None:
    for spec in SOURCES:
        load_source_table(engine, settings, spec)


def _dwd(engine: Engine, settings: Settings) -> None:
    for spec in SOURCES:
        load_dwd_table(engine, settings, spec)


def _empi(engine: Engine, settings: Settings, *, first_institution_only: bool) -> None:
    from medlake.empi import EmpiOperator
    from medlake.operators import OperatorContext

    patients = engine.read(dwd_path(settings, "patient"))
    if first_institution_only:  # a first batch, so the second links against stored masters (incremental path)
        first = engine.to_arrow(patients.select(nw.col("institution_code").min())).column(0)[0].as_py()
        patients = patients.filter(nw.col("institution_code") == first)
    ctx = OperatorContext(engine, settings, "dwd.patient", uuid.uuid4().hex, None)
    EmpiOperator({}).run(patients, ctx)


def _workflow(engine: Engine, settings: Settings) -> None:
    from medlake.workflows.run import run_workflow
    from medlake.workflows.spec import load_workflows
    from medlake.workflows.templates import TEMPLATES_DIR

    spec = next(s for s in load_workflows(TEMPLATES_DIR) if Path(s.file).name == WORKFLOW)
    run_workflow(spec, engine, settings, run_id=uuid.uuid4().hex, secrets={MASK_SALT: SALT})


def _dbt_landing(engine: Engine, settings: Settings) -> None:
    """What dbt-duckdb's ``external`` materialization does last: a Parquet file handed to the plugin's ``store``."""
    from medlake.dbt.duckdb_delta import Plugin

    staged = settings.work / "dbt" / f"{THEME}.parquet"
    staged.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(engine.to_arrow(engine.read(dwd_path(settings, "patient"))), staged)
    plugin = Plugin("medlake_delta", {"lake_root": str(settings.lake / "theme")})
    target = SimpleNamespace(location=SimpleNamespace(path=str(staged)), config={"delta_name": THEME},
                             relation=SimpleNamespace(identifier=THEME))
    plugin.store(target)  # type: ignore[arg-type]


STAGES: dict[str, Callable[[Engine, Settings], None]] = {
    "ods": _ods,
    "dwd": _dwd,
    "empi_first": lambda engine, settings: _empi(engine, settings, first_institution_only=True),
    "empi": lambda engine, settings: _empi(engine, settings, first_institution_only=False),
    "workflow": _workflow,
    "dbt": _dbt_landing,
}


def run_stages(home: Path, stages: list[str]) -> None:
    settings = Settings(home=home)
    engine = get_engine("polars")
    for stage in stages:
        STAGES[stage](engine, settings)


if __name__ == "__main__":
    run_stages(Path(sys.argv[1]), sys.argv[2:])
