"""``python -m medlake.bench pipeline``: generate deliveries, then materialize every asset (landing → metrics) in
one process and say where the time goes.

The run is given its :class:`~medlake.config.Settings` (a temporary home) through the resources; nothing is written
to the environment. The masking operator's salt is a secret read from ``MEDLAKE_MASK_SALT`` (``make bench`` sets the
demo value): without it the mask steps fail and are listed under ``failed_steps``.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from medlake.bench.measure import timed

__all__ = ["bench_pipeline"]


def bench_pipeline(encounters: int = 100_000, institutions: int = 10, days: int = 10) -> dict[str, Any]:
    """Generate ``encounters`` encounters' deliveries, then materialize every asset and check on the embedded
    engine; seconds of both, the slowest steps and any failure."""
    from dagster import DagsterInstance, materialize

    from medlake.config import settings as current_settings
    from medlake.definitions import build_definitions
    from medlake.pipeline import step_seconds
    from medlake.resources import resources_for
    from medlake.synth import SynthConfig, generate

    home = Path(tempfile.mkdtemp(prefix="medlake-bench-")) / "medlake"
    # the process's settings (its secrets, bound as EnvVars) on a scratch home
    settings = replace(current_settings(), home=home, lake_uri=None, dagster_instance=None)
    defs = build_definitions(settings)
    settings.dagster_home.mkdir(parents=True)
    config = SynthConfig(patients=max(encounters // 4, 10), days=days, institutions=institutions,
                         encounters=encounters, history_days=days, seed=1)
    generate_s, synth = timed(lambda: generate(config, settings))
    pipeline_s, result = timed(lambda: materialize(
        [*defs.assets, *defs.asset_checks], resources=resources_for(settings), instance=DagsterInstance.ephemeral(),
        raise_on_error=False))
    slowest = dict(list(step_seconds(result).items())[:10])
    failures = {e.step_key: str(e.event_specific_data.error.message)[:300]  # type: ignore[union-attr]
                for e in result.all_events if e.is_step_failure}
    return {
        "encounters": encounters, "rows_generated": sum(synth.rows.values()),
        "generate_seconds": round(generate_s, 1), "pipeline_seconds": round(pipeline_s, 1),
        "success": result.success, "failed_steps": failures, "slowest_steps_seconds": slowest,
    }
