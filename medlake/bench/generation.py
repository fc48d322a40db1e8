"""``python -m medlake.bench generation``: synthetic deliveries of N encounters → seconds, rows per table, peak RSS."""

from __future__ import annotations

import tempfile
from pathlib import Path

from medlake.bench.measure import peak_rss_mb

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
    return {
        "encounters": encounters,
        "seconds": report.seconds,
        "rows": dict(report.rows),
        "total_rows": sum(report.rows.values()),
        "files": report.files,
        "landing_mb": round(landing_bytes / 1e6, 1),
        "peak_rss_mb": peak_rss_mb(),
    }

