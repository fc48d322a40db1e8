"""Emitter transports (file by default, HTTP by OPENLINEAGE_URL, disabled) and schema validation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from openlineage.client.serde import Serde

from medlake.config import LineageSettings, Settings
from medlake.lineage.emitter import LineageEmitter, emit_run, events_path
from medlake.lineage.errors import EventValidationError, LineageError
from medlake.lineage.events import column_lineage_facet, dataset_identity, new_run_id, output_dataset, run_event
from medlake.lineage.validation import event_errors, validate_event, validate_events_file

_OL_VARS = ("OPENLINEAGE_URL", "OPENLINEAGE_ENDPOINT", "OPENLINEAGE_API_KEY", "OPENLINEAGE_CONFIG",
            "OPENLINEAGE__TRANSPORT__TYPE", "OPENLINEAGE_DISABLED")


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in _OL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path / "home"))
    return Settings(home=tmp_path / "home")


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], dict]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[tuple[str, list]]:
    _Collector.received = []
    httpd = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Collector.received
    httpd.shutdown()
    httpd.server_close()


def _table(location: Path) -> None:
    write_deltalake(str(location), pa.table({"patient_id": ["p1", "p2"], "sex_code": ["1", "2"]}))


def test_file_transport_writes_start_and_complete_with_schema_and_row_count(home: Settings) -> None:
    src, out = home.table_path("ods", "patient"), home.table_path("dwd", "patient")
    _table(src)
    with emit_run(["dwd", "patient"], [src], [out], {"sex_code": [(src, "sex_code", "TRANSFORMATION")]}) as run:
        _table(out)
        run.record_output(out, rows=2)
    events = [json.loads(line) for line in events_path().read_text(encoding="utf-8").splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    done = events[1]["outputs"][0]
    assert done["name"] == str(out) and done["namespace"] == "file"
    assert [f["name"] for f in done["facets"]["schema"]["fields"]] == ["patient_id", "sex_code"]
    assert done["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert events[1]["job"] == {**events[1]["job"], "namespace": "medlake", "name": "dwd/patient"}
    assert validate_events_file(events_path()) == 2


def test_failure_emits_fail_and_reraises(home: Settings) -> None:
    with pytest.raises(ZeroDivisionError), emit_run("dwd/encounter", [], [home.table_path("dwd", "encounter")]):
        _ = 1 / 0
    events = [json.loads(line) for line in events_path().read_text(encoding="utf-8").splitlines()]
    assert events[-1]["eventType"] == "FAIL"
    assert "ZeroDivisionError" in events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert validate_events_file(events_path()) == 2


def test_http_transport_posts_to_local_server(
    home: Settings, server: tuple[str, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = server
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "from-the-environment")  # a secret: the library never reads it
    with emit_run("metric/patients_by_sex", [], [home.table_path("metric", "patients_by_sex")],
                  emitter=LineageEmitter(api_key="secret-key")):
        pass
    assert [path for path, _, _ in received] == ["/api/v1/lineage", "/api/v1/lineage"]
    assert [body["eventType"] for _, _, body in received] == ["START", "COMPLETE"]
    assert received[0][1]["Authorization"] == "Bearer secret-key"
    for _, _, body in received:
        validate_event(body)
    assert not events_path().exists()
    with emit_run("metric/patients_by_sex", [], []):  # no key given: none sent, whatever the environment holds
        pass
    assert "Authorization" not in received[-1][1]


def test_http_transport_from_settings_alone(home: Settings, server: tuple[str, list]) -> None:
    url, received = server
    config = replace(home, lineage=LineageSettings(url=url, endpoint="api/v2/events"))
    with emit_run("dwd/patient", [], [], emitter=LineageEmitter(config=config)):
        pass
    assert [path for path, _, _ in received] == ["/api/v2/events", "/api/v2/events"]


def test_http_endpoint_down_never_breaks_the_pipeline(
    home: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")  # discard port: connection refused
    with emit_run("dwd/patient", [], []) as run:
        ran = run.job
    assert ran == "dwd/patient"
    assert "not delivered" in caplog.text


def test_disabled_emits_nothing(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    with emit_run("dwd/patient", [], []):
        pass
    assert not events_path().exists()
    assert LineageEmitter().client.transport.kind == "noop"


def test_validation_rejects_broken_events(home: Settings) -> None:
    event = json.loads(Serde.to_json(run_event(
        "COMPLETE", "dwd/patient", new_run_id(),
        outputs=[output_dataset("/lake/dwd/p", column_lineage={"a": [("/lake/ods/p", "a", "IDENTITY")]})],
    )))
    assert event_errors(event) == []
    event["eventType"] = "DONE"
    event["run"]["runId"] = "not-a-uuid"
    del event["outputs"][0]["facets"]["columnLineage"]["fields"]["a"]["inputFields"][0]["field"]
    errors = event_errors(event)
    assert any("eventType" in e for e in errors) and any("runId" in e for e in errors)
    assert any(e.startswith("outputs[0].facets.columnLineage") for e in errors)
    with pytest.raises(EventValidationError, match="line-7"):
        validate_event(event, source="line-7")


def test_naming_and_bad_lineage_specs() -> None:
    assert dataset_identity("s3://bucket/lake/dwd/patient") == ("s3://bucket", "lake/dwd/patient")
    assert dataset_identity("file:///lake/dwd/patient") == ("file", "/lake/dwd/patient")
    with pytest.raises(LineageError, match="sex_code"):
        column_lineage_facet({"sex_code": [("/lake/ods/p", "sex_code", "MAGIC")]})
