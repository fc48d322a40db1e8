"""``python -m medlake.bench spark_pipeline``: the full pipeline (ODS → DWD → dbt themes → metrics with checks and
EMPI, and the scenario workflows' quality / transcode / mask / EMPI operators) through
:func:`medlake.pipeline.materialize` on the same synthetic deliveries, one process per engine, one after the other.

Wall time per run includes process start, Dagster, and on Spark both JVM starts (the engine's and dbt-spark's); the
two lakes are compared with :func:`medlake.bench.parity.compare_lakes`. Each child is given its Settings (home and
engine) as arguments; its environment still carries them, with ``DAGSTER_HOME`` and the mask salt, because a child
process's Dagster instance (``DagsterInstance.get()``), the definitions it loads and the masking secret
(``MEDLAKE_MASK_SALT``) are found through the environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from medlake.bench.measure import timed
from medlake.config import MASK_SALT, Settings, child_environment
from medlake.config import settings as current_settings

__all__ = ["PIPELINE_SELECTION", "bench_pipeline"]

PIPELINE_SELECTION = "*"  # every asset of the medlake_all job: the spine plus the scenario workflows
_MATERIALIZE = (
    "import json, sys; from medlake.config import settings; "
    "from medlake.pipeline import materialize; "
    "o = materialize(sys.argv[1], settings()); "
    "print(json.dumps({'success': o.success, 'failed_steps': o.failed_steps, 'step_seconds': o.step_seconds}))"
)


def _materialize(settings: Settings, selection: str) -> tuple[float, dict[str, Any]]:
    # the child reads its settings from this environment; the demo salt unless this process has one
    salt = {} if MASK_SALT in current_settings().secrets else {MASK_SALT: "parity-salt"}
    env = child_environment({"MEDLAKE_HOME": str(settings.home), "DAGSTER_HOME": str(settings.dagster_home),
                             "MEDLAKE_ENGINE": settings.engine, **salt})
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    with (settings.home / "run.log").open("w") as log:
        seconds, proc = timed(lambda: subprocess.run(
            [sys.executable, "-c", _MATERIALIZE, selection, str(settings.home), settings.engine], env=env,
            stdout=subprocess.PIPE, stderr=log, text=True, check=False))
    lines = proc.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"success": False, "failed_steps": []}
    return seconds, outcome


def bench_pipeline(
    patients: int = 1000, days: int = 3, *, seed: int = 7, selection: str = PIPELINE_SELECTION,
    cfg: Settings | None = None, keep: bool = False,
) -> dict[str, Any]:
    """The full spine on both engines on the same synthetic input; wall seconds per engine and their ratio.
    Scratch homes go under ``cfg.work`` (kept with ``keep``)."""
    from medlake.bench.parity import compare_lakes
    from medlake.synth import SynthConfig, generate

    cfg = cfg or current_settings()
    cfg.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=cfg.work))
    try:
        delivered = Settings(home=root / "input")
        synth = generate(SynthConfig(patients=patients, days=days, institutions=2, history_days=days, seed=seed),
                         delivered)
        figures: dict[str, Any] = {}
        for engine in ("polars", "spark"):
            run = Settings(home=root / engine, engine=engine)
            shutil.copytree(delivered.landing, run.landing)
            seconds, outcome = _materialize(run, selection)
            figures[engine] = {"seconds": round(seconds, 1), "success": outcome["success"],
                               "failed_steps": outcome["failed_steps"],
                               "slowest_steps": dict(list(outcome.get("step_seconds", {}).items())[:8])}
        differences = compare_lakes(root / "polars" / "lake", root / "spark" / "lake")
        return {
            "patients": patients,
            "days": days,
            "delivered_rows": sum(synth.rows.values()),
            "selection": selection,
            **figures,
            "spark_over_polars_pipeline": round(figures["spark"]["seconds"] / figures["polars"]["seconds"], 2),
            "lakes_identical": not differences,
            "differences": differences[:20],
            "root": str(root) if keep else None,
        }
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
