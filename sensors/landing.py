"""Landing-zone sensor: a batch folder whose manifest has appeared (front-end machines write it last) triggers a run."""


import json
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from medlake.lake.ods import pending_batches
from medlake.resources import LakeResource

__all__ = ["build_landing_sensor"]


def build_landing_sensor(job: Any, minimum_interval_seconds: int = 60) -> SensorDefinition:
    @sensor(
        name="landing_zone_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description="Starts a run when complete batches (manifest.json present) arrive in the landing zone.",
    )
    def _landing(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult | SkipReason:
        landing = lake.settings.landing
        seen: list[str] = json.loads(context.cursor) if context.cursor else []
        batches = [str(p.relative_to(landing)) for p in pending_batches(lake.settings)]
        new = sorted(set(batches) - set(seen))
        if not new:
            return SkipReason(f"no new complete batch in {landing}")
        return SensorResult(
            run_requests=[RunRequest(run_key="|".join(new), tags={"medlake/batches": ",".join(new)[:200]})],
            cursor=json.dumps(sorted(set(seen) | set(new))),
        )

    return _landing
