from __future__ import annotations

import polars as pl

from medlake.engine import get_engine
from medlake.lake.ods import load_log_path, load_source_table, ods_path
from medlake.lake.quarantine import quarantine_path
from medlake.sources import source
from tests.conftest import deliver

PATIENTS = [
    {"patient_id": "P1", "name": "张三", "id_number": "11010519491231002X", "sex_code": "女",
     "birth_date": "1949-12-31", "phone": "13800000000", "region_code": "110105", "address": "北京", "updated_at": "2026-01-01 08:00:00"},
    {"patient_id": "P2", "name": "李四", "id_number": "", "sex_code": "1", "birth_date": "1980-02-30",
     "phone": "", "region_code": "110105", "address": "", "updated_at": "2026-01-01 09:00:00"},
]


def test_gbk_csv_lands_as_text_with_load_columns_and_reingest_adds_nothing(lake_settings) -> None:
    engine = get_engine("polars")
    deliver(lake_settings, "H1", "2026-01-01", {"patient": PATIENTS}, encoding="gbk")
    first = load_source_table(engine, lake_settings, source("patient"))
    assert (first.rows_loaded, first.rows_quarantined) == (2, 0)
    assert first.files[0].status == "reconciled"
    again = load_source_table(engine, lake_settings, source("patient"))
    assert again.rows_loaded == 0 and again.files_skipped == 1
    ods = pl.read_delta(ods_path(lake_settings, "patient")).sort("patient_id")
    assert ods.height == 2
    assert ods["name"].to_list() == ["张三", "李四"]
    assert ods["birth_date"][1] == "1980-02-30"  # as delivered, typing is DWD's job
    assert set(ods["_institution"]) == {"H1"} and ods["_source_line"].to_list() == [2, 3]


def test_malformed_and_undecodable_lines_are_quarantined_with_line_and_reason(lake_settings) -> None:
    engine = get_engine("polars")
    tail = b"P9,broken\n" + b"P10," + b"\xff\xfe bad bytes,,,,,,,2026-01-01 00:00:00\n"
    deliver(lake_settings, "H1", "2026-01-02", {"patient": PATIENTS}, raw_tail={"patient": tail})
    report = load_source_table(engine, lake_settings, source("patient"))
    assert report.rows_loaded == 2 and report.rows_quarantined == 2
    q = pl.read_delta(quarantine_path(lake_settings, "ods", "patient")).sort("source_line")
    assert q["source_line"].to_list() == [4, 5]
    assert "expected 9 fields, found 2" in q["reason"][0]
    assert "not valid utf-8" in q["reason"][1]
    assert q["source_file"][0].endswith("H1/2026-01-02/patient.csv")
    log = pl.read_delta(load_log_path(lake_settings, "patient"))
    assert log["status"].to_list() == ["reconciled"]  # 2 loaded + 2 quarantined = 4 in the manifest


def test_checksum_mismatch_rejects_file_but_rest_of_batch_loads(lake_settings) -> None:
    engine = get_engine("polars")
    folder = deliver(lake_settings, "H2", "2026-01-01", {"patient": PATIENTS, "encounter": []}, fmt="jsonl")
    with (folder / "patient.jsonl").open("ab") as fh:
        fh.write(b'{"patient_id": "P3"}\n')
    report = load_source_table(engine, lake_settings, source("patient"))
    assert report.files[0].status == "refused" and "checksum" in report.files[0].message
    q = pl.read_delta(quarantine_path(lake_settings, "ods", "patient"))
    assert q["field"].to_list() == ["sha256"]
    enc = load_source_table(engine, lake_settings, source("encounter"))
    assert enc.files[0].status == "reconciled"


def test_missing_business_key_is_quarantined_naming_the_field(lake_settings) -> None:
    engine = get_engine("polars")
    rows = [dict(PATIENTS[0]), dict(PATIENTS[1], patient_id=" ")]
    deliver(lake_settings, "H1", "2026-01-03", {"patient": rows}, fmt="jsonl")
    report = load_source_table(engine, lake_settings, source("patient"))
    assert report.rows_loaded == 1 and report.rows_quarantined == 1
    q = pl.read_delta(quarantine_path(lake_settings, "ods", "patient"))
    assert q["field"].to_list() == ["patient_id"] and q["source_line"].to_list() == [2]
