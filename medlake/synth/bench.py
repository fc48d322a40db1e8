"""Generation benchmark: ``bench_generation(1_000_000)`` → seconds, rows per table, peak RSS."""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

__all__ = ["bench_generation"]


def bench_generation(encounters: int, *, days: int = 30, institutions: int = 10, seed: int = 1) -> dict:
    """Generate ``encounters`` encounters (patients = encounters / 4) into a temporary home and measure it.

    Peak RSS is the process-wide maximum (ru_maxrss), so run this in a fresh process for a clean figure.
    """
    from medlake.config import Settings
    from medlake.synth import SynthConfig, generate

    config = SynthConfig(
        patients=max(1, encounters // 4),
        days=days,
        institutions=institutions,
        seed=seed,
        encounters=encounters,
        progress=False,
    )
    with tempfile.TemporaryDirectory(prefix="medlake-bench-") as home:
        report = generate(config, Settings(home=Path(home)))
        landing_bytes = sum(p.stat().st_size for p in Path(home, "landing").rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return {
        "encounters": encounters,
        "seconds": report.seconds,
        "rows": dict(report.rows),
        "total_rows": sum(report.rows.values()),
        "files": report.files,
        "landing_mb": round(landing_bytes / 1e6, 1),
        "peak_rss_mb": round(peak_mb, 1),
    }


if __name__ == "__main__":  # pragma: no cover - manual benchmark
    print(bench_generation(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
