from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

from medlake.engine import get_engine
from medlake.identifiers import normalize_id_number
from medlake.lake.dwd import dwd_path, load_dwd_table, normalize_id_number_column
from medlake.lake.ods import load_source_table
from medlake.lake.quarantine import quarantine_path
from medlake.sources import source
from tests.conftest import deliver
from tests.lake.test_ods import PATIENTS


def _load(engine, settings, table: str):
    load_source_table(engine, settings, source(table))
    return load_dwd_table(engine, settings, source(table))


@pytest.mark.parametrize(
    "raw",
    ["110105491231002", " 11010519491231002x ", "１１０１０５１９４９１２３１００２Ｘ", "", "12345", "11010519491231002X"],
)
def test_vectorized_id_normalization_agrees_with_the_scalar_rules(raw: str) -> None:
    import narwhals as nw

    frame = nw.from_native(pl.DataFrame({"id": [raw]}))
    got = normalize_id_number_column(frame.lazy(), "id").collect().to_native()["id"][0]
    assert got == normalize_id_number(raw)


def test_patients_are_typed_standardized_and_bad_optional_values_nulled(lake_settings) -> None:
    engine = get_engine("polars")
    deliver(lake_settings, "H1", "2026-01-01", {"patient": PATIENTS}, encoding="gbk")
    report = _load(engine, lake_settings, "patient")
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined, report.fields_nulled) == (2, 2, 0, 1)
    dwd = pl.read_delta(dwd_path(lake_settings, "patient")).sort("patient_id")
    assert dwd["institution_code"].to_list() == ["H1", "H1"]
    assert dwd["sex_code"].to_list() == ["2", "1"]  # 女 → GB/T 2261.1 code 2
    assert dwd["birth_date"].to_list() == [date(1949, 12, 31), None]  # 1980-02-30 is not a date
    assert dwd["updated_at"][0] == datetime(2026, 1, 1, 8)
    assert dwd["id_number"].to_list() == ["11010519491231002X", None]
    q = pl.read_delta(quarantine_path(lake_settings, "dwd", "patient"))
    assert q["field"].to_list() == ["birth_date"] and "'1980-02-30' is not a valid date" in q["reason"][0]


def test_settlement_revisions_update_rows_and_older_revisions_never_win(lake_settings) -> None:
    engine = get_engine("polars")
    base = {"psn_no": "S1", "psn_name": "张三", "id_number": "", "medins_code": "H1", "encounter_id": "E1",
            "setl_type": "outpatient", "setl_time": "2026-01-01 10:00:00", "begin_date": "2026-01-01",
            "end_date": "2026-01-01", "self_paid": "20", "setl_status": "1", "updated_at": "2026-01-01 10:00:00"}
    day1 = [dict(base, setl_id="A", total_amount="100", fund_paid="80", revision="1"),
            dict(base, setl_id="B", total_amount="50", fund_paid="40", revision="1")]
    deliver(lake_settings, "YB", "2026-01-01", {"settlement": day1})
    assert _load(engine, lake_settings, "settlement").rows_inserted == 2
    day2 = [dict(base, setl_id="A", total_amount="0", fund_paid="0", revision="2", setl_status="2"),
            dict(base, setl_id="B", total_amount="999", fund_paid="1", revision="0"),  # stale re-delivery
            dict(base, setl_id="C", total_amount="10", fund_paid="tbd", revision="1")]  # required not typed
    deliver(lake_settings, "YB", "2026-01-02", {"settlement": day2})
    report = _load(engine, lake_settings, "settlement")
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (3, 0, 1)
    dwd = pl.read_delta(dwd_path(lake_settings, "settlement")).sort("setl_id")
    assert dwd["setl_id"].to_list() == ["A", "B"]
    assert dwd["total_amount"].to_list() == [Decimal("0"), Decimal("50")]
    assert dwd["setl_status"].to_list() == ["2", "1"]
    again = _load(engine, lake_settings, "settlement")
    assert again.rows_read == 0  # watermark: nothing new since the last run
    q = pl.read_delta(quarantine_path(lake_settings, "dwd", "settlement"))
    assert q["field"].to_list() == ["fund_paid"]


def test_settlements_are_partitioned_by_key_block_and_merge_prunes_other_blocks(lake_settings) -> None:
    from deltalake import DeltaTable

    engine = get_engine("polars")
    base = {"psn_no": "S1", "medins_code": "H1", "setl_time": "2026-01-01 10:00:00", "total_amount": "10",
            "fund_paid": "5", "setl_status": "1", "updated_at": "2026-01-01 10:00:00"}
    day1 = [dict(base, setl_id=f"3301H{n:011d}", revision="1") for n in (1, 2, 100_001, 200_001)]
    deliver(lake_settings, "YB", "2026-01-01", {"settlement": day1})
    _load(engine, lake_settings, "settlement")
    table = DeltaTable(dwd_path(lake_settings, "settlement"))
    assert table.metadata().partition_columns == ["_key_block"]
    day2 = [dict(base, setl_id=f"3301H{200_001:011d}", revision="2", total_amount="0", fund_paid="0")]
    deliver(lake_settings, "YB", "2026-01-02", {"settlement": day2})
    report = _load(engine, lake_settings, "settlement")
    assert (report.rows_updated, report.rows_inserted) == (1, 0)
    day3 = [dict(base, setl_id=f"3301H{900_001:011d}", revision="1"), dict(base, setl_id=f"3301H{2:011d}", revision="3")]
    deliver(lake_settings, "YB", "2026-01-03", {"settlement": day3})
    report = _load(engine, lake_settings, "settlement")  # a new block is appended, a known one merged
    assert (report.rows_updated, report.rows_inserted) == (1, 1)
    dwd = pl.read_delta(dwd_path(lake_settings, "settlement")).sort("setl_id")
    assert dwd["_key_block"].to_list() == ["3301H000000", "3301H000000", "3301H000001", "3301H000002", "3301H000009"]
    assert dwd.filter(pl.col("setl_id").str.ends_with("200001"))["total_amount"].to_list() == [Decimal("0")]
    merge = DeltaTable(dwd_path(lake_settings, "settlement")).history(1)[0]["operationMetrics"]
    assert merge["num_target_files_removed"] == 1  # only the block holding the revised settlement was rewritten
    assert DeltaTable(dwd_path(lake_settings, "settlement")).history(2)[1]["operation"] == "WRITE"  # new block
