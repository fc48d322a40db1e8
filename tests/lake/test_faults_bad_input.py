"""Bad-input corpus: every way a delivery can be wrong, each loaded next to a good file of the same batch.

Each case asserts the exact rows landed in ods/<table>, the quarantine rows (file, line, field, reason) and the
load-log status. Files are a few lines; the 2 GB file is sparse (nothing big is written or read)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from medlake.config import DEFAULT_MAX_FILE_BYTES, Settings
from medlake.engine import get_engine
from medlake.lake.manifest import Manifest, ManifestFile, write_manifest
from medlake.lake.ods import OdsLoadReport, load_log_path, load_source_table, ods_path
from medlake.lake.quarantine import quarantine_path
from medlake.sources import source

pytestmark = pytest.mark.faults

COLUMNS = source("patient").column_names
GOOD = [
    {"patient_id": "G1", "name": "王五", "id_number": "", "sex_code": "1", "birth_date": "1970-01-01",
     "phone": "13900000000", "region_code": "110105", "address": "北京", "updated_at": "2026-01-01 08:00:00"},
]
ROWS = [
    {"patient_id": "P1", "name": "张三", "id_number": "11010519491231002X", "sex_code": "2", "birth_date": "1949-12-31",
     "phone": "13800000000", "region_code": "110105", "address": "北京", "updated_at": "2026-01-01 08:00:00"},
    {"patient_id": "P2", "name": "李四", "id_number": "310106198002280011", "sex_code": "1", "birth_date": "1980-02-28",
     "phone": "13700000000", "region_code": "110106", "address": "上海", "updated_at": "2026-01-01 09:00:00"},
]


def _csv(rows: list[dict[str, str]], columns: list[str] = COLUMNS, newline: str = "\n") -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator=newline, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _File:
    """One manifest entry; ``data`` None lists a file that is not written. Defaults describe ``data`` truly."""

    name: str
    data: bytes | None
    rows: int = 0
    table: str = "patient"
    sha256: str = ""
    fmt: str = "csv"
    encoding: str = "utf-8"
    sums: dict[str, str] = field(default_factory=dict)


def _deliver(settings: Settings, institution: str, day: str, *files: _File, manifest_institution: str = "",
             business_date: str = "", good: bool = True) -> Path:
    """A batch folder with ``files`` and (when ``good``) a good patient file, then its manifest."""
    folder = settings.landing / institution / day
    folder.mkdir(parents=True, exist_ok=True)
    listed = [*files, _File("roster.csv", _csv(GOOD).encode(), rows=1)] if good else list(files)
    entries = []
    for f in listed:
        if f.data is not None:
            (folder / f.name).write_bytes(f.data)
        sha = f.sha256 or _sha(f.data or b"")
        entries.append(ManifestFile(f.table, f.name, f.fmt, f.encoding, f.rows, sha, f.sums))  # type: ignore[arg-type]
    write_manifest(folder, Manifest(manifest_institution or institution, f"{institution}-{day}",
                                    business_date or day, f"{day}T23:00:00", tuple(entries)))
    return folder


@dataclass
class _Loaded:
    report: OdsLoadReport
    ods: pl.DataFrame
    quarantine: pl.DataFrame
    log: pl.DataFrame

    def landed(self) -> list[tuple[str, str, int]]:
        """(source file, patient_id, source line) of every ODS row."""
        if self.ods.is_empty():
            return []
        return sorted(self.ods.select("_source_file", "patient_id", "_source_line").iter_rows())

    def refused(self) -> list[tuple[str, int, str, str]]:
        """(source file, line, field, reason) of every quarantine row."""
        if self.quarantine.is_empty():
            return []
        return sorted(self.quarantine.select("source_file", "source_line", "field", "reason").iter_rows())

    def statuses(self) -> dict[str, str]:
        return dict(self.log.select("source_file", "status").iter_rows())

    def message(self, source_file: str) -> str:
        return self.log.filter(pl.col("source_file") == source_file)["message"].item()


def _read(path: str) -> pl.DataFrame:
    engine = get_engine("polars")
    return pl.read_delta(path) if engine.exists(path) else pl.DataFrame()


def _load(settings: Settings, table: str = "patient") -> _Loaded:
    report = load_source_table(get_engine("polars"), settings, source(table))
    return _Loaded(report, _read(ods_path(settings, table)), _read(quarantine_path(settings, "ods", table)),
                   _read(load_log_path(settings, table)))


def _good(batch: str = "H1/2026-01-01") -> tuple[str, str, int]:
    return (f"{batch}/roster.csv", "G1", 2)


# ------------------------------------------------------------------------------------------------ truncated files


def test_file_cut_mid_line_is_refused_by_its_checksum_and_loads_once_delivered_whole(lake_settings) -> None:
    whole = _csv(ROWS).encode()
    cut = whole[: whole.index(b"P2,") + 8]  # "P2,李四" cut inside the name's UTF-8 bytes
    folder = _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", cut, rows=2, sha256=_sha(whole)))
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    assert got.refused() == [
        ("H1/2026-01-01/patient.csv", 0, "sha256",
         f"H1/2026-01-01/patient.csv: checksum {_sha(cut)[:12]}… does not match manifest {_sha(whole)[:12]}…"),
    ]
    assert got.statuses() == {"H1/2026-01-01/patient.csv": "refused", "H1/2026-01-01/roster.csv": "reconciled"}
    (folder / "patient.csv").write_bytes(whole)  # the copy is completed
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.statuses() == {"H1/2026-01-01/patient.csv": "reconciled", "H1/2026-01-01/roster.csv": "reconciled"}


def test_export_cut_mid_line_quarantines_the_partial_last_line(lake_settings) -> None:
    whole = _csv(ROWS).encode()
    cut = whole[: whole.index(b"P2,") + len("P2,李四,3101".encode())]  # no newline at the end either
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", cut, rows=2))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), _good()]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 3, "", "expected 9 fields, found 3")]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"  # 1 loaded + 1 quarantined = 2 listed


# ------------------------------------------------------------------------------------------------ encodings


def test_gbk_line_in_a_utf8_file_is_quarantined_and_the_utf8_lines_land(lake_settings) -> None:
    header, p1, p2 = _csv(ROWS).splitlines(keepends=True)
    data = (header + p1).encode("utf-8") + p2.encode("gbk")
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", data, rows=2))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), _good()]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 3, "", "bytes 3-4 are not valid utf-8")]
    assert got.quarantine["raw"][0].startswith("P2,")
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"


def test_utf8_line_in_a_gbk_file_is_quarantined_not_landed_as_wrong_characters(lake_settings) -> None:
    header, p1, p2 = _csv(ROWS).splitlines(keepends=True)
    data = (header + p1).encode("gbk") + p2.encode("utf-8")
    assert data.decode("gbk")  # the whole file decodes as GBK: without the check, P2 would land as 鏉庡洓
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", data, rows=2, encoding="gbk"))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), _good()]
    assert got.ods.filter(pl.col("patient_id") == "P1")["name"].to_list() == ["张三"]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 3, "", "line is UTF-8 text in a file declared gbk")]
    assert got.quarantine["raw"][0] == p2.rstrip("\n")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_utf8_bom_is_not_part_of_the_first_column_or_row(lake_settings, fmt: str) -> None:
    body = _csv(ROWS) if fmt == "csv" else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)
    data = "\ufeff".encode() + body.encode()
    _deliver(lake_settings, "H1", "2026-01-01", _File(f"patient.{fmt}", data, rows=2, fmt=fmt))
    got = _load(lake_settings)
    first = 2 if fmt == "csv" else 1
    assert got.landed() == [(f"H1/2026-01-01/patient.{fmt}", "P1", first),
                            (f"H1/2026-01-01/patient.{fmt}", "P2", first + 1), _good()]
    assert got.refused() == []
    assert got.statuses()[f"H1/2026-01-01/patient.{fmt}"] == "reconciled"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_crlf_line_ends_leave_no_carriage_return_in_values(lake_settings, fmt: str) -> None:
    body = (_csv(ROWS, newline="\r\n") if fmt == "csv"
            else "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in ROWS))
    _deliver(lake_settings, "H1", "2026-01-01", _File(f"patient.{fmt}", body.encode(), rows=2, fmt=fmt))
    got = _load(lake_settings)
    assert got.refused() == []
    rows = got.ods.filter(pl.col("_source_file").str.ends_with(f"patient.{fmt}")).sort("patient_id")
    assert rows.select(COLUMNS).to_dicts() == ROWS
    assert got.statuses()[f"H1/2026-01-01/patient.{fmt}"] == "reconciled"


# ------------------------------------------------------------------------------------------------ schema drift


def test_extra_column_is_quarantined_as_a_column_and_the_rows_land(lake_settings) -> None:
    rows = [dict(r, ward="3A") for r in ROWS]
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(rows, [*COLUMNS, "ward"]).encode(), rows=2))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert "ward" not in got.ods.columns
    assert got.refused() == [("H1/2026-01-01/patient.csv", 1, "ward",
                              "column 'ward' is not in the patient landing contract: its values were not landed")]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"


def test_missing_optional_column_lands_empty_and_is_noted_in_the_load_log(lake_settings) -> None:
    columns = [c for c in COLUMNS if c != "phone"]
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(ROWS, columns).encode(), rows=2))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.ods.filter(pl.col("patient_id").is_in(["P1", "P2"]))["phone"].to_list() == [None, None]
    assert got.refused() == []
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"
    assert got.message("H1/2026-01-01/patient.csv") == "header lacks optional column(s) phone: landed empty"


def test_missing_required_column_rejects_the_file_naming_the_column(lake_settings) -> None:
    columns = [c for c in COLUMNS if c != "updated_at"]
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(ROWS, columns).encode(), rows=2))
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 0, "updated_at",
                              "H1/2026-01-01/patient.csv: header lacks required column(s) updated_at")]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "rejected"


def test_renamed_column_lands_the_contract_column_empty_and_quarantines_the_new_name(lake_settings) -> None:
    rows = [{("mobile" if k == "phone" else k): v for k, v in r.items()} for r in ROWS]
    columns = ["mobile" if c == "phone" else c for c in COLUMNS]
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(rows, columns).encode(), rows=2))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.ods.filter(pl.col("patient_id") == "P1")["phone"].to_list() == [None]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 1, "mobile",
                              "column 'mobile' is not in the patient landing contract: its values were not landed")]
    assert got.message("H1/2026-01-01/patient.csv") == "header lacks optional column(s) phone: landed empty"


def test_reordered_columns_land_by_name(lake_settings) -> None:
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(ROWS, COLUMNS[::-1]).encode(), rows=2))
    got = _load(lake_settings)
    assert got.refused() == []
    rows = got.ods.filter(pl.col("_source_file").str.ends_with("patient.csv")).sort("patient_id")
    assert rows.select(COLUMNS).to_dicts() == ROWS


# ------------------------------------------------------------------------------------------------ lying manifests


def test_manifest_row_count_lie_lands_the_rows_as_mismatch(lake_settings) -> None:
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", _csv(ROWS).encode(), rows=5))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "mismatch"
    assert got.message("H1/2026-01-01/patient.csv") == "manifest rows 5 != loaded 2 + quarantined 0"


def test_manifest_amount_sum_lie_lands_the_rows_as_mismatch(lake_settings) -> None:
    spec = source("order_item")
    items = [{"order_id": f"O{i}", "encounter_id": "E1", "item_category": "drug", "local_item_code": "X",
              "amount": amount, "updated_at": "2026-01-01 08:00:00"} for i, amount in enumerate(["10.50", "2.25"])]
    data = _csv(items, spec.column_names).encode()
    _deliver(lake_settings, "H1", "2026-01-01",
             _File("order_item.csv", data, rows=2, table="order_item", sums={"amount": "99.0000"}), good=False)
    got = _load(lake_settings, "order_item")
    assert sorted(got.ods["order_id"].to_list()) == ["O0", "O1"]
    assert got.statuses() == {"H1/2026-01-01/order_item.csv": "mismatch"}
    assert got.message("H1/2026-01-01/order_item.csv") == (
        "amount sums differ (manifest {'amount': '99.0000'}, loaded {'amount': '12.7500'}; "
        "quarantined rows are not in the loaded sums)")


def test_manifest_checksum_lie_rejects_the_file(lake_settings) -> None:
    data = _csv(ROWS).encode()
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", data, rows=2, sha256="0" * 64))
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 0, "sha256",
                              f"H1/2026-01-01/patient.csv: checksum {_sha(data)[:12]}… does not match manifest "
                              "000000000000…")]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "refused"


# ------------------------------------------------------------------------------------------------ late and empty files


def test_file_listed_before_it_arrives_is_retried_and_loads_once_delivered(lake_settings) -> None:
    data = _csv(ROWS).encode()
    folder = _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", None, rows=2, sha256=_sha(data)))
    first = _load(lake_settings)
    assert first.landed() == [_good()]
    assert first.refused() == []  # nothing was refused: the file is not there yet
    assert first.statuses()["H1/2026-01-01/patient.csv"] == "missing"
    assert first.message("H1/2026-01-01/patient.csv") == (
        "H1/2026-01-01/patient.csv: listed in the manifest but not delivered yet; tried again on the next run")
    (folder / "patient.csv").write_bytes(data)
    second = _load(lake_settings)
    assert second.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3),
                               _good()]
    assert second.statuses() == {"H1/2026-01-01/patient.csv": "reconciled", "H1/2026-01-01/roster.csv": "reconciled"}
    third = _load(lake_settings)
    assert third.report.rows_loaded == 0 and third.report.files_skipped == 2 and third.ods.height == 3


@pytest.mark.parametrize(("data", "listed", "status", "message"), [
    (b"", 0, "reconciled", "empty file (no header, no rows)"),
    (b"", 3, "mismatch", "empty file (no header, no rows); manifest rows 3 != loaded 0 + quarantined 0"),
    (_csv([]).encode(), 0, "reconciled", ""),
], ids=["zero-bytes", "zero-bytes-manifest-says-3", "header-only"])
def test_empty_file_lands_nothing_and_is_reconciled_against_the_manifest(
    lake_settings, data: bytes, listed: int, status: str, message: str
) -> None:
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", data, rows=listed))
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    assert got.refused() == []
    assert got.statuses()["H1/2026-01-01/patient.csv"] == status
    assert got.message("H1/2026-01-01/patient.csv") == message


# ------------------------------------------------------------------------------------------------ size


def test_two_gigabyte_file_is_refused_before_it_is_read(lake_settings) -> None:
    folder = lake_settings.landing / "H1" / "2026-01-01"
    folder.mkdir(parents=True)
    with (folder / "patient.csv").open("wb") as fh:  # sparse: no block is written
        os.truncate(fh.fileno(), 2 << 30)
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", None, rows=10_000_000, sha256="f" * 64))
    got = _load(lake_settings)
    assert lake_settings.max_file_bytes == DEFAULT_MAX_FILE_BYTES == 256 << 20
    assert got.landed() == [_good()]
    assert got.refused() == [("H1/2026-01-01/patient.csv", 0, "file",
                              "H1/2026-01-01/patient.csv: 2147483648 bytes, above the 268435456-byte limit "
                              "(MEDLAKE_MAX_FILE_BYTES); not read, tried again on the next run")]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "too_large"


def test_size_limit_comes_from_settings_and_a_refused_file_loads_once_it_is_raised(lake_settings, monkeypatch) -> None:
    from medlake.config import settings

    data = _csv(ROWS).encode()
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", data, rows=2))
    monkeypatch.setenv("MEDLAKE_MAX_FILE_BYTES", str(len(data) - 1))
    tight = settings()
    assert tight.max_file_bytes == len(data) - 1
    got = _load(tight)
    assert got.landed() == [_good()]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "too_large"
    monkeypatch.setenv("MEDLAKE_MAX_FILE_BYTES", str(len(data)))
    got = _load(settings())
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"


# ------------------------------------------------------------------------------------------------ path traversal


def _refused_name(got: _Loaded, name: str, reason: str) -> None:
    """The traversal entry is refused naming the file and field; the good file of the batch loads; no row of
    anything outside the batch folder landed."""
    rel = f"H1/2026-01-01/{name}"
    assert got.landed() == [_good()]
    assert got.refused() == [(rel, 0, "file", f"{rel}: {reason}")]
    assert got.statuses() == {rel: "refused", "H1/2026-01-01/roster.csv": "reconciled"}


def test_manifest_naming_etc_passwd_is_refused_before_it_is_opened(lake_settings) -> None:
    name = "../../../../../../etc/passwd"
    _deliver(lake_settings, "H1", "2026-01-01", _File(name, None, sha256="a" * 64))
    got = _load(lake_settings)
    _refused_name(got, name, "manifest field file climbs out of the batch folder (..)")
    passwd = _sha(Path("/etc/passwd").read_bytes())
    assert not any(passwd[:12] in text for text in got.quarantine["reason"].to_list() + got.log["message"].to_list())


def test_csv_outside_the_landing_zone_is_not_loaded(lake_settings) -> None:
    outside = lake_settings.home / "outside"
    outside.mkdir()
    data = _csv(ROWS).encode()
    (outside / "patient.csv").write_bytes(data)
    name = "../../../outside/patient.csv"
    assert (lake_settings.landing / "H1" / "2026-01-01" / name).resolve() == (outside / "patient.csv")
    _deliver(lake_settings, "H1", "2026-01-01", _File(name, None, rows=2, sha256=_sha(data)))
    _refused_name(_load(lake_settings), name, "manifest field file climbs out of the batch folder (..)")


@pytest.mark.parametrize("how", ["climb", "same-checksum"])
def test_another_institutions_file_is_neither_loaded_under_ones_own_name_nor_blocked(lake_settings, how) -> None:
    """H1 (loaded first: same date, sorted first) names H2's not-yet-loaded file, or lists garbage under its
    checksum; H1 gets nothing of it, and the refused claim does not stop H2's own file from loading."""
    theirs = _csv(ROWS).encode()
    _deliver(lake_settings, "H2", "2026-01-01", _File("patient.csv", theirs, rows=2), good=False)
    name, data = ("../../H2/2026-01-01/patient.csv", None) if how == "climb" else ("patient.csv", b"patient_id\n")
    _deliver(lake_settings, "H1", "2026-01-01", _File(name, data, rows=2, sha256=_sha(theirs)))
    got = _load(lake_settings)
    assert sorted(got.ods.select("_institution", "_source_file", "patient_id").iter_rows()) == [
        ("H1", "H1/2026-01-01/roster.csv", "G1"), ("H2", "H2/2026-01-01/patient.csv", "P1"),
        ("H2", "H2/2026-01-01/patient.csv", "P2")]
    reason = ("manifest field file climbs out of the batch folder (..)" if how == "climb" else
              f"checksum {_sha(data or b'')[:12]}… does not match manifest {_sha(theirs)[:12]}…")
    assert got.refused() == [(f"H1/2026-01-01/{name}", 0, "file" if how == "climb" else "sha256",
                              f"H1/2026-01-01/{name}: {reason}")]
    assert got.statuses() == {f"H1/2026-01-01/{name}": "refused", "H1/2026-01-01/roster.csv": "reconciled",
                              "H2/2026-01-01/patient.csv": "reconciled"}


@pytest.mark.parametrize("name", ["{outside}", "C:\\outside\\patient.csv", "\\\\server\\share\\patient.csv"])
def test_absolute_path_is_refused(lake_settings, name: str) -> None:
    outside = lake_settings.home / "outside"
    outside.mkdir()
    data = _csv(ROWS).encode()
    (outside / "patient.csv").write_bytes(data)
    name = name.format(outside=outside / "patient.csv")
    _deliver(lake_settings, "H1", "2026-01-01", _File(name, None, rows=2, sha256=_sha(data)))
    _refused_name(_load(lake_settings), name,
                  "manifest field file is an absolute path; it must name a file inside the batch folder")


def test_backslash_climb_is_refused(lake_settings) -> None:
    name = "..\\..\\..\\outside\\patient.csv"
    _deliver(lake_settings, "H1", "2026-01-01", _File(name, None, sha256="a" * 64))
    _refused_name(_load(lake_settings), name, "manifest field file climbs out of the batch folder (..)")


@pytest.mark.parametrize("target", ["outside", "other-batch"])
def test_symlink_leading_out_of_the_batch_folder_is_refused(lake_settings, target: str) -> None:
    data = _csv(ROWS).encode()
    if target == "outside":
        real = lake_settings.home / "outside" / "patient.csv"
    else:  # another institution's batch, inside the landing zone
        real = lake_settings.landing / "H2" / "2026-01-01" / "patient.csv"
    real.parent.mkdir(parents=True)
    real.write_bytes(data)
    folder = lake_settings.landing / "H1" / "2026-01-01"
    folder.mkdir(parents=True)
    (folder / "patient.csv").symlink_to(real)
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", None, rows=2, sha256=_sha(data)))
    _refused_name(_load(lake_settings), "patient.csv",
                  "manifest field file resolves outside the batch folder (symlink)")


def test_symlink_inside_the_batch_folder_loads(lake_settings) -> None:
    data = _csv(ROWS).encode()
    folder = lake_settings.landing / "H1" / "2026-01-01"
    (folder / "export").mkdir(parents=True)
    (folder / "export" / "patient-v1.csv").write_bytes(data)
    (folder / "patient.csv").symlink_to(folder / "export" / "patient-v1.csv")
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", None, rows=2, sha256=_sha(data)))
    got = _load(lake_settings)
    assert got.landed() == [("H1/2026-01-01/patient.csv", "P1", 2), ("H1/2026-01-01/patient.csv", "P2", 3), _good()]
    assert got.statuses()["H1/2026-01-01/patient.csv"] == "reconciled"


def test_fifo_is_refused_without_blocking(lake_settings) -> None:
    folder = lake_settings.landing / "H1" / "2026-01-01"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "patient.csv")
    _deliver(lake_settings, "H1", "2026-01-01", _File("patient.csv", None, sha256="a" * 64))
    _refused_name(_load(lake_settings), "patient.csv", "not a regular file")


# ------------------------------------------------------------------------------------------------ batch identity


@pytest.mark.parametrize(("override", "field_name", "reason"), [
    ({"manifest_institution": "H2"}, "institution",
     "batch folder H1/2026-01-02 belongs to institution H1 but its manifest says institution 'H2'"),
    ({"business_date": "2026-01-05"}, "business_date",
     "batch folder H1/2026-01-02 is for 2026-01-02 but its manifest says business_date '2026-01-05'"),
], ids=["institution", "business-date"])
def test_batch_whose_manifest_names_another_institution_or_date_is_refused_whole(
    lake_settings, override: dict[str, str], field_name: str, reason: str
) -> None:
    _deliver(lake_settings, "H1", "2026-01-01")  # an honest batch of the same institution still loads
    _deliver(lake_settings, "H1", "2026-01-02", _File("patient.csv", _csv(ROWS).encode(), rows=2), **override)
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    assert got.refused() == [("H1/2026-01-02/manifest.json", 0, field_name, reason)]
    assert got.quarantine["institution"].to_list() == ["H1"]
    assert got.statuses() == {"H1/2026-01-01/roster.csv": "reconciled"}  # nothing of the refused batch is "done"
    assert got.report.batches_refused == [reason]


def test_batch_folder_symlinked_from_outside_the_landing_zone_is_refused(lake_settings) -> None:
    elsewhere = lake_settings.home / "elsewhere"
    _deliver(Settings(home=elsewhere), "H1", "2026-01-02", _File("patient.csv", _csv(ROWS).encode(), rows=2))
    (lake_settings.landing / "H1").mkdir(parents=True)
    (lake_settings.landing / "H1" / "2026-01-02").symlink_to(elsewhere / "landing" / "H1" / "2026-01-02")
    got = _load(lake_settings)
    assert got.landed() == []
    assert got.refused() == [("H1/2026-01-02/manifest.json", 0, "folder",
                              "batch folder H1/2026-01-02 resolves outside the landing zone (symlink)")]


@pytest.mark.parametrize(("field_name", "value", "expected"), [
    ("sha256", ["not", "text"], "text"),
    ("rows", "two", "a whole number of rows"),
    ("sums", {"amount": "abc"}, "an object of amount column → decimal sum"),
])
def test_manifest_field_of_the_wrong_type_refuses_only_its_batch(
    lake_settings, field_name: str, value: object, expected: str
) -> None:
    _deliver(lake_settings, "H1", "2026-01-01")
    folder = _deliver(lake_settings, "H1", "2026-01-02", _File("patient.csv", _csv(ROWS).encode(), rows=2))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][0][field_name] = value
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    got = _load(lake_settings)
    assert got.landed() == [_good()]
    where = f"files[0].{field_name}"
    assert got.refused() == [("H1/2026-01-02/manifest.json", 0, "manifest",
                              f"{folder / 'manifest.json'}:{where}: manifest field {where} must be {expected}")]
