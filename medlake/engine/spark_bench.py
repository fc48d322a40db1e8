"""Benchmarks of Spark ``local[2]`` against the embedded engine, each returning the Spark/polars time ratio.

- :func:`bench_merge`: the settlement MERGE (and a plain append). ``python -m medlake.engine.spark_bench merge
  1000000 100000`` prints one JSON object. Each engine gets its own copy of the same target table; the timings cover
  the engine call only (Spark's session start is reported apart), and the two merged tables are compared row for
  row afterwards, so a fast but wrong engine cannot win.
- :func:`bench_pipeline`: the full pipeline (ODS → DWD → dbt themes → metrics with checks and EMPI, and the
  scenario workflows' quality / transcode / mask / EMPI operators) through
  ``medlake.pipeline.materialize`` on the same synthetic deliveries, one process per engine, one after the other.
  ``python -m medlake.engine.spark_bench pipeline 1000 3`` (patients, days). Wall time per run includes process
  start, Dagster, and on Spark both JVM starts (the engine's and dbt-spark's); the lakes are compared with
  :func:`medlake.engine.parity.compare_lakes`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from medlake.config import Settings
from medlake.config import settings as current_settings
from medlake.engine.base import Engine
from medlake.engine.polars_engine import PolarsEngine

__all__ = ["PIPELINE_SELECTION", "bench_merge", "bench_pipeline", "settlement_batches"]

PIPELINE_SELECTION = "*"  # every asset of the medlake_all job: the spine plus the scenario workflows
_MATERIALIZE = (
    "import json, sys; from medlake.pipeline import materialize; o = materialize(sys.argv[1]); "
    "print(json.dumps({'success': o.success, 'failed_steps': o.failed_steps, 'step_seconds': o.step_seconds}))"
)

_KEYS = ("setl_id",)
_EPOCH = datetime(2024, 1, 1)


def settlement_batches(target_rows: int, increment_rows: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A settlement target and an increment: half re-deliveries of existing ``setl_id`` (newer), half new ones."""
    updates = min(increment_rows // 2, target_rows)

    def batch(ids: pl.Series, start: datetime, salt: int) -> pl.DataFrame:
        n = ids.len()
        frame = pl.DataFrame({"setl_id": ids}).with_columns(
            pl.lit("YB330100").alias("institution_code"),
            (pl.col("setl_id").hash(seed + salt) % 10_000_000).cast(pl.Utf8).str.zfill(10).alias("psn_no"),
            ((pl.col("setl_id").hash(seed + salt + 1) % 5_000_000).cast(pl.Decimal(18, 4)) / 100)
            .cast(pl.Decimal(18, 4)).alias("total_amount"),
            pl.datetime_range(start, start + timedelta(seconds=max(n - 1, 0)), "1s", eager=True)
            .head(n).alias("setl_time"),
        )
        return frame.with_columns(
            (pl.col("total_amount") * pl.lit(0.7).cast(pl.Decimal(18, 4))).cast(pl.Decimal(18, 4))
            .alias("fund_paid"),
            (pl.col("setl_time") + pl.duration(minutes=5)).alias("updated_at"),
        )

    target = batch(pl.Series(range(target_rows)).cast(pl.Utf8).str.zfill(12), _EPOCH, 0)
    fresh = range(target_rows, target_rows + increment_rows - updates)
    increment_ids = pl.concat([
        pl.Series(range(0, target_rows, max(target_rows // max(updates, 1), 1))).head(updates),
        pl.Series(fresh),
    ]).cast(pl.Utf8).str.zfill(12)
    return target, batch(increment_ids, _EPOCH + timedelta(seconds=target_rows), 1)  # every row newer


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return round(time.perf_counter() - start, 3), result


def _run(engine: Engine, target: pl.DataFrame, increment: pl.DataFrame, root: Path) -> dict[str, Any]:
    merged, appended = str(root / engine.name / "merged"), str(root / engine.name / "appended")
    for path in (merged, appended):
        engine.overwrite(engine.from_arrow(target.to_arrow()), path)
    append_s, _ = _timed(lambda: engine.append(engine.from_arrow(increment.to_arrow()), appended))
    merge_s, result = _timed(lambda: engine.merge(
        engine.from_arrow(increment.to_arrow()), merged, keys=_KEYS, version_column="updated_at"))
    return {
        "append_s": append_s,
        "merge_s": merge_s,
        "merge_over_append": round(merge_s / append_s, 2) if append_s else None,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_after_merge": engine.row_count(merged),
    }


def bench_merge(target_rows: int, increment_rows: int, cfg: Settings | None = None) -> dict[str, Any]:
    """MERGE and append of ``increment_rows`` into ``target_rows`` on both engines, with the Spark/polars ratio."""
    from medlake.engine.spark_engine import SparkEngine
    from medlake.engine.spark_session import get_spark

    cfg = cfg or current_settings()
    cfg.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_merge_", dir=cfg.work))
    try:
        target, increment = settlement_batches(target_rows, increment_rows)
        start_s, spark = _timed(lambda: get_spark(cfg))
        figures = {"polars": _run(PolarsEngine(), target, increment, root)}
        figures["spark"] = _run(SparkEngine(spark, cfg), target, increment, root)
        tables = [pl.read_delta(str(root / name / "merged")).sort("setl_id") for name in ("polars", "spark")]
        return {
            "target_rows": target_rows,
            "increment_rows": increment_rows,
            "spark_master": spark.sparkContext.master,
            "spark_session_start_s": start_s,
            **figures,
            "spark_over_polars_merge": round(figures["spark"]["merge_s"] / figures["polars"]["merge_s"], 2),
            "spark_over_polars_append": round(figures["spark"]["append_s"] / figures["polars"]["append_s"], 2),
            "merged_tables_identical": tables[0].equals(tables[1]),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _materialize(engine: str, home: Path, selection: str) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "MEDLAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "MEDLAKE_ENGINE": engine,
           "MEDLAKE_MASK_SALT": os.environ.get("MEDLAKE_MASK_SALT") or "parity-salt"}
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    with (home / "run.log").open("w") as log:
        seconds, proc = _timed(lambda: subprocess.run(
            [sys.executable, "-c", _MATERIALIZE, selection], env=env, stdout=subprocess.PIPE, stderr=log,
            text=True, check=False))
    lines = proc.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"success": False, "failed_steps": []}
    return seconds, outcome


def bench_pipeline(
    patients: int = 1000, days: int = 3, *, seed: int = 7, selection: str = PIPELINE_SELECTION,
    cfg: Settings | None = None, keep: bool = False,
) -> dict[str, Any]:
    """The full spine on both engines on the same synthetic input; wall seconds per engine and their ratio."""
    from medlake.engine.parity import compare_lakes
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
            home = root / engine
            shutil.copytree(delivered.landing, home / "landing")
            seconds, outcome = _materialize(engine, home, selection)
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


if __name__ == "__main__":
    argv = sys.argv[1:]
    kind, *args = argv if argv and not argv[0].isdigit() else ["merge", *argv]
    if kind == "pipeline":
        print(json.dumps(bench_pipeline(*[int(a) for a in args[:2]]), indent=1))
    else:
        sizes = [int(a) for a in args[:2]] or [1_000_000, 100_000]
        print(json.dumps(bench_merge(*sizes), indent=1))
