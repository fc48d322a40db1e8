"""Audit: every request (answered or refused) leaves exactly one record; no answer without a written record;
records a crash left in the write-ahead file are committed exactly once on the next start."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from medlake.engine import get_engine
from medlake.services.audit import SEQ_KEY, AuditLog, AuditRecord, audit_path, read_audit
from tests.services.conftest import MASTER, Service, build_lake, start


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    engine, settings = build_lake(tmp_path_factory.mktemp("audit-lake"))
    yield from start(engine, settings)


def _all_records(service: Service) -> pa.Table:
    service.client.app.state.service.audit.flush()
    return service.engine.to_arrow(service.engine.read(audit_path(service.settings)))


def test_every_request_has_exactly_one_audit_row(fresh: Service) -> None:
    client = fresh.client
    headers = fresh.headers("clinician")
    client.get("/health")
    client.get(f"/patients/{MASTER}", headers=headers)
    client.get(f"/patients/{MASTER}?limit=1&offset=1", headers=headers)
    client.get(f"/patients/{MASTER}")  # 401
    client.get("/catalog", headers=fresh.headers("analyst"))
    client.post("/metrics/visits_daily/query", json={}, headers=headers)  # 403
    client.get(f"/patients/{MASTER}?limit=0", headers=headers)  # 422
    client.post("/services/encounters_by_department", json={"unknown": 1}, headers=headers)  # 422
    client.post("/services/encounters_by_department", content=b"x" * 70_000, headers=headers)  # 413
    client.get("/no/such/path", headers=headers)  # 404
    assert not fresh.recorder.without_id
    records = _all_records(fresh)
    counts = Counter(records.column("request_id").to_pylist())
    assert set(counts) == set(fresh.recorder.ids)
    assert all(count == 1 for count in counts.values())
    by_status = Counter(records.column("status").to_pylist())
    assert by_status[401] == 1 and by_status[403] == 1 and by_status[422] == 2 and by_status[413] == 1
    assert by_status[404] == 1
    seqs = records.column("seq").to_pylist()
    assert sorted(seqs) == list(range(1, len(seqs) + 1))


def test_record_says_who_what_and_how_it_went(fresh: Service) -> None:
    response = fresh.client.get(f"/patients/{MASTER}?limit=2", headers=fresh.headers("data_steward"))
    assert response.status_code == 200
    records = _all_records(fresh).to_pylist()
    record = next(r for r in records if r["request_id"] == response.headers["x-request-id"])
    assert record["user"] == "data_steward-user" and record["role"] == "data_steward"
    assert record["service"] == "patient360" and record["outcome"] == "ok" and record["status"] == 200
    assert json.loads(record["parameters"]) == {"master_id": MASTER, "limit": 2, "offset": 0}
    assert record["rows"] == 1 + 2 + 2  # golden record, two identities, one page of two events
    assert "dwd.golden_record.id_number" in record["columns_unmasked"]
    assert record["latency_ms"] > 0


def test_no_answer_without_an_audit_record(fresh: Service, tmp_path: Path) -> None:
    audit = fresh.client.app.state.service.audit
    kept = audit.wal
    audit.wal = tmp_path / "missing-folder" / "audit.wal"  # the write-ahead file cannot be opened
    try:
        response = fresh.client.get(f"/patients/{MASTER}", headers=fresh.headers("clinician"))
    finally:
        audit.wal = kept
    assert response.status_code == 503
    assert response.json()["title"] == "Audit unavailable"
    assert "golden_record" not in response.text


def test_crash_leftovers_are_committed_once(tmp_path: Path) -> None:
    engine, lake_settings = build_lake(tmp_path)
    settings = replace(lake_settings, serve=replace(lake_settings.serve, audit_flush_seconds=3600))
    first = AuditLog(engine, settings)
    first.start()
    for number in range(3):
        first.record(AuditRecord(request_id=f"r{number}", time=datetime.now(UTC), method="GET", path="/health"))
    first.flush()  # r0..r2 committed
    first.record(AuditRecord(request_id="r3", time=datetime.now(UTC), method="GET", path="/health"))
    first._stop.set()  # a crash: r3 is only in the write-ahead file (the flusher sleeps for an hour)
    first._owner.release()
    assert engine.commit_metadata(audit_path(settings))[SEQ_KEY] == "3"

    second = AuditLog(engine, settings)
    second.start()  # commits r3, and nothing twice
    second.close()
    ids = read_audit(engine, settings, limit=100).column("request_id").to_pylist()
    assert sorted(ids) == ["r0", "r1", "r2", "r3"]


def test_audit_command_lists_records(fresh: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    from medlake.cli import _register, app

    fresh.client.get("/catalog", headers=fresh.headers("analyst"))
    fresh.client.app.state.service.audit.flush()
    monkeypatch.setenv("MEDLAKE_HOME", str(fresh.settings.home))
    _register()
    result = CliRunner().invoke(app, ["audit", "--user", "analyst-user", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all(r["user"] == "analyst-user" for r in rows)
    assert rows[0]["service"] == "catalog"
    assert get_engine("polars").exists(audit_path(fresh.settings))
