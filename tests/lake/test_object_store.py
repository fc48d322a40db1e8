"""The lake in an S3-compatible object store (``MEDLAKE_LAKE_URI=s3://…``), for real: a moto S3 server on a free
loopback port, the real ODS → DWD Dagster assets on the polars engine (delta-rs + polars) writing into it, checked
against a run on local disk over the same delivery.

moto runs in a child process, not in a thread of this one: delta-rs holds the GIL while it waits for some HTTP
replies (``DeltaTable.is_deltatable``), so an in-process server thread could never answer them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from medlake.config import Settings, is_remote, settings
from medlake.engine import get_engine
from medlake.lineage.catalog import catalog
from medlake.lineage.delta_log import delta_snapshot
from medlake.resources import resources_for
from medlake.sources import SOURCES
from medlake.synth import SynthConfig, generate

pytestmark = [pytest.mark.slow]

BUCKET = "medlake-test"
LAKE_URI = f"s3://{BUCKET}/lake"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server (``python -m moto.server``) on 127.0.0.1, stopped after the module."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small synthetic delivery (landing folder), shared by the local and the object-store run."""
    home = tmp_path_factory.mktemp("delivery") / "medlake"
    generate(SynthConfig(patients=120, days=2, institutions=2, seed=5, history_days=2), Settings(home=home))
    return home / "landing"


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Credentials and endpoint the way a deployment gives them: environment only; a fresh bucket."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_S3_ALLOW_UNSAFE_RENAME"):
        monkeypatch.delenv(name, raising=False)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield s3_endpoint


def _home(root: Path, landing: Path) -> Settings:
    home = root / "medlake"
    (home / "dagster").mkdir(parents=True)
    shutil.copytree(landing, home / "landing")
    return Settings(home=home)


def _run(current: Settings) -> None:
    from assets.dwd import dwd_assets
    from assets.ods import ods_assets

    result = materialize([*ods_assets, *dwd_assets], resources=resources_for(current),
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    assert failures == [] and result.success


def _tables(current: Settings) -> dict[str, tuple[int, int]]:
    """``layer/table`` → (rows, Delta version) for every ODS, DWD, audit and quarantine table."""
    engine = get_engine("polars")
    out = {}
    for spec in SOURCES:
        for layer, name in (("ods", spec.name), ("dwd", spec.name), ("audit", f"ods_loads_{spec.name}"),
                            ("quarantine", f"ods_{spec.name}"), ("quarantine", f"dwd_{spec.name}")):
            path = str(current.lake / layer / name)
            if engine.exists(path):
                out[f"{layer}/{name}"] = (engine.row_count(path), engine.version(path))
    return out


def _bucket_tables() -> set[str]:
    """``layer/table`` of every Delta log in the bucket, listed with boto3 (not through medlake)."""
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/")
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    return {"/".join(k.split("/")[1:3]) for k in keys if k.split("/")[3:4] == ["_delta_log"]}


def test_settings_read_the_lake_uri_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    monkeypatch.delenv("MEDLAKE_LAKE_URI", raising=False)
    assert settings().lake == tmp_path / "lake" and not is_remote(settings().lake)
    monkeypatch.setenv("MEDLAKE_LAKE_URI", "s3://bucket/medlake/lake/")
    current = settings()
    assert str(current.table_path("dwd", "patient")) == "s3://bucket/medlake/lake/dwd/patient"
    assert current.table_path("dwd", "patient").name == "patient" and current.lake_is_remote
    assert current.landing == tmp_path / "landing" and current.work == tmp_path / "work"  # scratch stays local
    monkeypatch.setenv("MEDLAKE_LAKE_URI", str(tmp_path / "elsewhere"))
    assert settings().lake == tmp_path / "elsewhere"
    assert Settings(home=tmp_path, lake_uri=f"file://{tmp_path}/x").lake == tmp_path / "x"


def test_ods_and_dwd_load_into_an_s3_lake_like_on_local_disk(
    s3_env: str, delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _home(tmp_path / "local", delivery)
    monkeypatch.setenv("MEDLAKE_HOME", str(local.home))
    _run(local)
    expected = _tables(local)
    assert {k for k in expected if k.startswith("dwd/")} == {f"dwd/{s.name}" for s in SOURCES}

    remote_home = _home(tmp_path / "remote", delivery)
    monkeypatch.setenv("MEDLAKE_HOME", str(remote_home.home))
    monkeypatch.setenv("MEDLAKE_LAKE_URI", LAKE_URI)
    remote = settings()
    assert str(remote.lake) == LAKE_URI and remote.home == remote_home.home
    _run(remote)

    assert not (remote.home / "lake").exists()  # nothing of the lake went to local disk
    assert _bucket_tables() == set(expected)
    first = _tables(remote)
    assert {k: rows for k, (rows, _) in first.items()} == {k: rows for k, (rows, _) in expected.items()}
    patients = pl.read_delta(str(remote.table_path("dwd", "patient"))).sort("institution_code", "patient_id")
    local_patients = pl.read_delta(str(local.table_path("dwd", "patient"))).sort("institution_code", "patient_id")
    assert patients.drop("_loaded_at").equals(local_patients.drop("_loaded_at"))

    # the same delivery again: every file is skipped, no table gets a new version or a row more
    _run(remote)
    assert _tables(remote) == first

    # what reads the lake by listing it (catalog, status) sees the same tables in the bucket
    entries = {e.name: e for e in catalog(remote)}
    assert {n for n in entries if n.startswith("dwd.")} == {f"dwd.{s.name}" for s in SOURCES}
    assert entries["dwd.patient"].rows == first["dwd/patient"][0]
    assert entries["dwd.patient"].location == f"{LAKE_URI}/dwd/patient"
    snap = delta_snapshot(remote.table_path("ods", "patient"))
    assert snap is not None and snap.rows == first["ods/patient"][0]
    from medlake.quality.runner import open_table
    from medlake.status import lake_status

    assert open_table(remote.table_path("dwd", "patient")).count_rows() == first["dwd/patient"][0]
    status = lake_status(remote)
    assert set(status.quarantined) == {k.split("/")[1] for k in first if k.startswith("quarantine/")}
    assert sum(status.loads.values()) == sum(rows for k, (rows, _) in first.items() if k.startswith("audit/"))


def _materialize_everything(current: Settings, env: dict[str, str]) -> None:
    """The full demo pipeline (``medlake.pipeline.materialize("*")``) in a fresh process, like ``medlake run``."""
    script = ("import json; from medlake.pipeline import materialize; o = materialize('*'); "
              "print(json.dumps({'success': o.success, 'failed': o.failed_steps}))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).resolve().parents[2],
                          env={**env, "MEDLAKE_HOME": str(current.home), "DAGSTER_HOME": str(current.dagster_home),
                               "MEDLAKE_MASK_SALT": "object-store-salt"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == '{"success": true, "failed": []}', proc.stderr[-4000:]


def test_the_full_pipeline_on_an_s3_lake_equals_the_local_one(
    s3_env: str, delivery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every asset — ODS, DWD with checks, EMPI, dbt themes, metrics, the scenario workflows — into the bucket:
    every table the same (rows and content checksum) as the same run on local disk."""
    import os

    from medlake.bench.parity import compare_lakes, lake_fingerprints

    env = {k: v for k, v in os.environ.items() if k != "MEDLAKE_LAKE_URI"}
    local = _home(tmp_path / "local", delivery)
    _materialize_everything(local, env)
    remote_home = _home(tmp_path / "remote", delivery)
    _materialize_everything(remote_home, {**env, "MEDLAKE_LAKE_URI": f"{LAKE_URI}-full"})
    monkeypatch.setenv("MEDLAKE_HOME", str(remote_home.home))
    monkeypatch.setenv("MEDLAKE_LAKE_URI", f"{LAKE_URI}-full")
    remote = settings()

    assert not (remote.home / "lake").exists()
    tables = lake_fingerprints(remote.lake)
    for table in ("dwd/master_patient_index", "theme/encounters", "metric/visits_daily",
                  "governed/insurance_settlement_review", "quality/check_results"):
        assert tables[table].rows > 0, table
    assert compare_lakes(local.lake, remote.lake) == []
