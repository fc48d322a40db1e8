"""``make bench``: the platform's speed and memory figures, each measured in a fresh process.

    python -m medlake.bench                       # every benchmark at its default size
    python -m medlake.bench merge pipeline        # some of them
    python -m medlake.bench pipeline --size 1000000   # encounters; spark_pipeline: patients

Figures are printed with the machine's core count. Machines are shared and noisy: compare ratios measured in one
run (MERGE vs append, Spark vs embedded), not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "bench_merge_vs_append", "bench_pipeline", "main"]


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_merge_vs_append(target_rows: int = 10_000_000, increment_rows: int = 1_000_000) -> dict[str, Any]:
    """MERGE a settlement increment (half revisions of existing rows, half new) into a ``target_rows`` table, vs
    appending the same rows to an identical table, on the embedded engine (delta-rs). Two increments: revisions
    spread uniformly over the whole table (every data file is rewritten), and revisions of the most recent
    settlements (refunds and re-settlements arrive within weeks; the table is in load order)."""
    import narwhals as nw
    import polars as pl

    from medlake.engine import get_engine
    from medlake.engine.spark_bench import settlement_batches
    from medlake.lake.dwd import dwd_partitions, key_block_expr
    from medlake.sources import source

    engine = get_engine("polars")
    spec = source("settlement")
    partitions = dwd_partitions(spec)  # the DWD layout: blocks of consecutive settlement IDs
    target, uniform = settlement_batches(target_rows, increment_rows)
    updates = min(increment_rows // 2, target_rows)
    recent_ids = pl.concat([target["setl_id"].tail(updates), uniform["setl_id"].slice(updates)])
    recent = uniform.with_columns(recent_ids.alias("setl_id"))
    figures: dict[str, Any] = {"target_rows": target_rows, "increment_rows": increment_rows,
                               "partitions": partitions}

    def frame(data: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(data.lazy()).with_columns(key_block_expr(spec))

    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: f"{tmp}/{name}" for name in ("appended", "uniform", "recent")}
        for path in paths.values():  # a MERGE into a missing table creates it with the DWD partitioning
            engine.merge(frame(target), path, keys=("setl_id",), partition_by=partitions)
        del target
        start = time.perf_counter()
        engine.append(frame(uniform), paths["appended"])
        figures["append_seconds"] = round(time.perf_counter() - start, 2)
        for name, increment in (("uniform", uniform), ("recent", recent)):
            start = time.perf_counter()
            result = engine.merge(frame(increment), paths[name], keys=("setl_id",), version_column="updated_at",
                                  partition_by=partitions)
            seconds = time.perf_counter() - start
            figures[f"merge_{name}_seconds"] = round(seconds, 2)
            figures[f"merge_{name}_over_append"] = round(seconds / figures["append_seconds"], 2)
            metrics = result.metrics
            figures[f"merge_{name}_rows"] = {
                "updated": result.rows_updated, "inserted": result.rows_inserted,
                "files_scanned": metrics.get("num_target_files_scanned"),
                "files_skipped": metrics.get("num_target_files_skipped_during_scan"),
            }
    return figures


def bench_pipeline(encounters: int = 100_000, institutions: int = 10, days: int = 10) -> dict[str, Any]:
    """Generate deliveries, then materialize every asset (landing → metrics) and say where the time goes."""
    from dagster import DagsterInstance, materialize

    from medlake.config import Settings
    from medlake.pipeline import step_seconds
    from medlake.resources import resources_for
    from medlake.synth import SynthConfig, generate

    home = Path(tempfile.mkdtemp(prefix="medlake-bench-")) / "medlake"
    (home / "dagster").mkdir(parents=True)
    os.environ["MEDLAKE_HOME"] = str(home)
    os.environ.setdefault("MEDLAKE_MASK_SALT", "bench-salt")
    settings = Settings(home=home)
    start = time.perf_counter()
    synth = generate(SynthConfig(patients=max(encounters // 4, 10), days=days, institutions=institutions,
                                 encounters=encounters, history_days=days, seed=1), settings)
    generate_s = time.perf_counter() - start
    from medlake.definitions import defs

    start = time.perf_counter()
    result = materialize([*defs.assets, *defs.asset_checks], resources=resources_for(settings),
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    pipeline_s = time.perf_counter() - start
    slowest = dict(list(step_seconds(result).items())[:10])
    failures = {e.step_key: str(e.event_specific_data.error.message)[:300]  # type: ignore[union-attr]
                for e in result.all_events if e.is_step_failure}
    return {
        "encounters": encounters, "rows_generated": sum(synth.rows.values()) if hasattr(synth, "rows") else None,
        "generate_seconds": round(generate_s, 1), "pipeline_seconds": round(pipeline_s, 1),
        "success": result.success, "failed_steps": failures, "slowest_steps_seconds": slowest,
    }


def _generation(encounters: int = 1_000_000) -> dict[str, Any]:
    from medlake.synth.bench import bench_generation

    return bench_generation(encounters)


def _quality(rows: int = 10_000_000) -> dict[str, Any]:
    from medlake.quality.bench import bench_checks

    return bench_checks(rows)


def _empi(records: int = 1_000_000) -> dict[str, Any]:
    from medlake.empi.bench import bench_empi

    return bench_empi(records)


def _transcode(rows: int = 1_000_000) -> dict[str, Any]:
    from medlake.transcode.bench import bench_transcode

    return bench_transcode(rows)


def _maintenance(rows_per_day: int = 30_000) -> dict[str, Any]:
    from medlake.lake.maintenance_bench import bench_maintenance

    return bench_maintenance(rows_per_day, days=30)


def _spark_merge(target_rows: int = 1_000_000) -> dict[str, Any]:
    from medlake.engine.spark_bench import bench_merge

    return bench_merge(target_rows, target_rows // 10)


def _spark_pipeline(patients: int = 1000) -> dict[str, Any]:
    from medlake.engine.spark_bench import bench_pipeline as bench_engines

    return bench_engines(patients, 3)


BENCHMARKS: dict[str, Callable[[int], dict[str, Any]]] = {
    "generation": _generation,  # size: encounters
    "pipeline": bench_pipeline,  # size: encounters
    "merge": bench_merge_vs_append,  # size: target rows
    "quality": _quality,  # size: rows
    "empi": _empi,  # size: records
    "transcode": _transcode,  # size: rows
    "maintenance": _maintenance,  # size: settlement rows per day (30 daily increments)
    "spark_merge": _spark_merge,  # size: target rows
    "spark_pipeline": _spark_pipeline,  # size: patients (3 days, 2 institutions), the full demo on both engines
}
_DEFAULT_SIZES = {"generation": 1_000_000, "pipeline": 100_000, "merge": 10_000_000, "quality": 10_000_000,
                  "empi": 1_000_000, "transcode": 1_000_000, "maintenance": 30_000, "spark_merge": 1_000_000,
                  "spark_pipeline": 1000}


def _child(name: str, size: int) -> None:
    start = time.perf_counter()
    figures = BENCHMARKS[name](size)
    figures = {"benchmark": name, "size": size, **figures, "wall_seconds": round(time.perf_counter() - start, 1),
               "peak_rss_mb": _peak_rss_mb()}
    print("MEDLAKE_BENCH " + json.dumps(figures, default=str, ensure_ascii=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medlake.bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--size", type=int, default=None, help="override the size of every selected benchmark")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    if args.child:
        _child(names[0], args.size or _DEFAULT_SIZES[names[0]])
        return 0
    print(f"medlake benchmarks on {os.cpu_count()} cores (Python {sys.version.split()[0]})", flush=True)
    failed = 0
    for name in names:
        size = args.size or _DEFAULT_SIZES[name]
        command = [sys.executable, "-m", "medlake.bench", name, "--size", str(size), "--child"]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEDLAKE_BENCH ")]
        if proc.returncode != 0 or not lines:
            failed += 1
            print(f"{name}: FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
            continue
        figures = json.loads(lines[-1].removeprefix("MEDLAKE_BENCH "))
        print(f"{name}: " + json.dumps(figures, ensure_ascii=False), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
