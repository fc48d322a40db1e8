"""The landing-zone sensor requests a run for complete batches only (manifest written last), once each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import build_sensor_context, define_asset_job

from medlake.config import Settings
from medlake.lake.manifest import MANIFEST_NAME
from medlake.resources import LakeResource
from sensors.landing import build_landing_sensor
from tests.conftest import deliver

_ROW = {"patient_id": "P1", "name": "张三", "sex_code": "1", "birth_date": "1980-01-01", "updated_at": "2026-01-01 08:00:00"}


def test_complete_batches_trigger_one_run_each_and_incomplete_ones_wait(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    sensor = build_landing_sensor(define_asset_job("everything"))
    lake = LakeResource(home=str(settings.home))

    deliver(settings, "H1", "2026-01-01", {"patient": [_ROW]})
    waiting = deliver(settings, "H2", "2026-01-01", {"patient": [_ROW]})
    manifest = (waiting / MANIFEST_NAME).read_text(encoding="utf-8")
    (waiting / MANIFEST_NAME).unlink()  # the front-end machine has not finished this batch yet

    def tick(cursor: str | None) -> Any:
        with build_sensor_context(cursor=cursor, resources={"lake": lake}) as context:
            return sensor.evaluate_tick(context)

    first = tick(None)
    assert [r.run_key for r in first.run_requests] == ["H1/2026-01-01"]

    again = tick(first.cursor)
    assert not again.run_requests and "no new complete batch" in (again.skip_message or "")

    (waiting / MANIFEST_NAME).write_text(manifest, encoding="utf-8")
    later = tick(first.cursor)
    assert [r.run_key for r in later.run_requests] == ["H2/2026-01-01"]
    assert later.cursor is not None and "H1/2026-01-01" in later.cursor
