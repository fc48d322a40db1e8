"""``make bench``: the platform's speed and memory figures, each measured in a fresh process.

    python -m medlake.bench                       # every benchmark at its default size
    python -m medlake.bench merge pipeline        # some of them
    python -m medlake.bench pipeline --size 1000000   # encounters; spark_pipeline: patients

Figures are printed with the machine's core count. Machines are shared and noisy: compare ratios measured in one
run (MERGE vs append, Spark vs embedded), not absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from medlake.bench.measure import peak_rss_mb, timed

__all__ = ["BENCHMARKS", "Benchmark", "main"]


@dataclass(frozen=True)
class Benchmark:
    """``medlake.bench.<module>.<function>(size)``, where ``size`` counts what ``unit`` says."""

    module: str
    function: str
    default_size: int
    unit: str

    def run(self, size: int) -> dict[str, Any]:
        return getattr(importlib.import_module(f"medlake.bench.{self.module}"), self.function)(size)


BENCHMARKS: dict[str, Benchmark] = {
    "generation": Benchmark("generation", "bench_generation", 1_000_000, "encounters"),
    "pipeline": Benchmark("pipeline", "bench_pipeline", 100_000, "encounters"),
    "merge": Benchmark("merge", "bench_merge_vs_append", 10_000_000, "target rows"),
    "quality": Benchmark("quality", "bench_checks", 10_000_000, "rows"),
    "empi": Benchmark("empi", "bench_empi", 1_000_000, "records"),
    "transcode": Benchmark("transcode", "bench_transcode", 1_000_000, "rows"),
    "maintenance": Benchmark("maintenance", "bench_maintenance", 30_000,
                             "settlement rows per day (30 daily increments)"),
    "spark_merge": Benchmark("spark_merge", "bench_merge", 1_000_000, "target rows"),
    "spark_pipeline": Benchmark("spark_pipeline", "bench_pipeline", 1000,
                                "patients (3 days, 2 institutions), the full demo on both engines"),
    "serve": Benchmark("serve", "bench_serve", 200, "patient-360 requests/s offered for 60 s (MEDLAKE_HOME's lake)"),
}


def _child(name: str, size: int) -> None:
    seconds, figures = timed(lambda: BENCHMARKS[name].run(size))
    figures = {"benchmark": name, "size": size, **figures, "wall_seconds": round(seconds, 1),
               "peak_rss_mb": peak_rss_mb()}
    print("MEDLAKE_BENCH " + json.dumps(figures, default=str, ensure_ascii=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medlake.bench", description=__doc__.splitlines()[0],
        epilog="sizes: " + "; ".join(f"{n}: {b.unit} (default {b.default_size:,})" for n, b in BENCHMARKS.items()))
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--size", type=int, default=None, help="override the size of every selected benchmark")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    if args.child:
        _child(names[0], args.size or BENCHMARKS[names[0]].default_size)
        return 0
    print(f"medlake benchmarks on {os.cpu_count()} cores (Python {sys.version.split()[0]})", flush=True)
    failed = 0
    for name in names:
        size = args.size or BENCHMARKS[name].default_size
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
