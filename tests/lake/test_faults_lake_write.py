"""A lake that cannot be written (disk full, read-only) during an ODS load: a clear LakeWriteError naming the table
and the cause, every table left at its last committed version, and the next run (space freed, mount writable)
loads what the failed one could not.

The real cases put the lake on a 4 MiB tmpfs (``mount -t tmpfs``; needs root with CAP_SYS_ADMIN, skipped
otherwise): disk full is the tmpfs filled up with a filler file, read-only is ``mount -o remount,ro``. Tests run as
root, which ignores permission bits, so a chmod'ed folder would not simulate anything. The last test injects the
errors at the filesystem boundary (delta-rs's ``write_deltalake``) and runs everywhere."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from medlake.config import Settings
from medlake.engine import get_engine, polars_engine
from medlake.errors import LakeWriteError
from medlake.lake.ods import load_log_path, load_source_table, ods_path
from medlake.lake.quarantine import quarantine_path
from medlake.sources import source
from tests.conftest import deliver

pytestmark = pytest.mark.faults

PATIENT = {"patient_id": "P1", "name": "张三", "id_number": "", "sex_code": "1", "birth_date": "1980-01-01",
           "phone": "", "region_code": "110105", "address": "", "updated_at": "2026-01-01 08:00:00"}


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def small_lake(lake_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings whose lake is a fresh 4 MiB tmpfs (landing stays on the ordinary disk)."""
    mount_point = tmp_path / "lake"
    mount_point.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({getattr(exc, 'stderr', exc)}); the injected-error test covers it")
    try:
        yield Settings(home=lake_settings.home, lake_uri=str(mount_point))
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _state(path: str) -> tuple[int, int]:
    table = DeltaTable(path)
    return table.version(), table.to_pyarrow_table().num_rows


def _tables(settings: Settings) -> list[str]:
    return [ods_path(settings, "patient"), quarantine_path(settings, "ods", "patient"),
            load_log_path(settings, "patient")]


def _first_batch(settings: Settings) -> dict[str, tuple[int, int]]:
    """One committed load (1 row landed, 1 malformed line quarantined, 1 log row); the state of its tables."""
    deliver(settings, "H1", "2026-01-01", {"patient": [PATIENT]}, raw_tail={"patient": b"P9,broken\n"})
    report = load_source_table(get_engine("polars"), settings, source("patient"))
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    return {path: _state(path) for path in _tables(settings)}


def _second_batch(settings: Settings, kind: str) -> str:
    """A batch whose first write is the ODS append (``rows``) or the quarantine MERGE (``refused``: only a file
    with a wrong checksum). Returns the table that write goes to."""
    folder = deliver(settings, "H1", "2026-01-02", {"patient": [dict(PATIENT, patient_id="P2")]})
    if kind == "refused":
        (folder / "patient.csv").write_bytes(b"patient_id,name,updated_at\nP2,x,y\n")
        return quarantine_path(settings, "ods", "patient")
    return ods_path(settings, "patient")


@pytest.mark.parametrize("kind", ["rows", "refused"])
def test_disk_full_during_a_load_raises_naming_the_table_and_leaves_every_table_as_committed(
    small_lake: Settings, kind: str
) -> None:
    before = _first_batch(small_lake)
    table = _second_batch(small_lake, kind)
    filler = _fill(Path(str(small_lake.lake)))
    with pytest.raises(LakeWriteError) as failed:
        load_source_table(get_engine("polars"), small_lake, source("patient"))
    assert failed.value.table == table
    assert failed.value.cause == "No space left on device (ENOSPC)"
    assert str(failed.value) == (f"cannot write table {table}: No space left on device (ENOSPC); the table is left "
                                 "at its last committed version")
    assert {path: _state(path) for path in _tables(small_lake)} == before
    filler.unlink()  # space freed: the next run loads the second batch
    report = load_source_table(get_engine("polars"), small_lake, source("patient"))
    assert [f.status for f in report.files] == ["skipped", "reconciled" if kind == "rows" else "refused"]
    assert _state(ods_path(small_lake, "patient"))[1] == (2 if kind == "rows" else 1)


def test_read_only_lake_during_a_load_raises_naming_the_table_and_leaves_it_as_committed(small_lake: Settings) -> None:
    before = _first_batch(small_lake)
    table = _second_batch(small_lake, "rows")
    mount_point = str(small_lake.lake)
    _mount("-o", "remount,ro", mount_point)
    try:
        with pytest.raises(LakeWriteError) as failed:
            load_source_table(get_engine("polars"), small_lake, source("patient"))
        assert (failed.value.table, failed.value.cause) == (table, "Read-only file system (EROFS)")
        assert {path: _state(path) for path in _tables(small_lake)} == before
    finally:
        _mount("-o", "remount,rw", mount_point)
    report = load_source_table(get_engine("polars"), small_lake, source("patient"))
    assert [f.status for f in report.files] == ["skipped", "reconciled"]
    assert _state(ods_path(small_lake, "patient")) == (before[table][0] + 1, 2)


@pytest.mark.parametrize(("raised", "cause"), [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device (ENOSPC)"),
    (DeltaError("Failed to parse parquet: External: Generic LocalFileSystem error: Unable to copy data to file: "
                "No space left on device (os error 28)"), "No space left on device (ENOSPC)"),
    (DeltaError("Generic LocalFileSystem error: Unable to open file x.parquet: Read-only file system (os error 30)"),
     "Read-only file system (EROFS)"),
], ids=["oserror", "delta-enospc", "delta-erofs"])
def test_filesystem_errors_from_delta_rs_become_lake_write_errors(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch, raised: Exception, cause: str
) -> None:
    engine = get_engine("polars")
    path = ods_path(lake_settings, "patient")
    engine.append(engine.from_arrow(pa.table({"patient_id": ["P1"]})), path)

    def _fail(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(polars_engine, "write_deltalake", _fail)
    with pytest.raises(LakeWriteError) as failed:
        engine.append(engine.from_arrow(pa.table({"patient_id": ["P2"]})), path)
    assert (failed.value.table, failed.value.cause) == (path, cause)
    assert failed.value.__cause__ is raised
    assert _state(path) == (0, 1)


def test_other_delta_errors_are_not_disguised_as_filesystem_failures(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = get_engine("polars")
    schema_error = DeltaError("Schema error: cannot cast string to int")

    def _fail(*args: object, **kwargs: object) -> None:
        raise schema_error

    monkeypatch.setattr(polars_engine, "write_deltalake", _fail)
    with pytest.raises(DeltaError) as failed:
        engine.append(engine.from_arrow(pa.table({"patient_id": ["P2"]})), ods_path(lake_settings, "patient"))
    assert failed.value is schema_error
