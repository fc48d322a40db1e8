"""The two engines share one lake: DWD tables started by one engine are continued by the other through the real
loaders (watermarks in either commit-metadata form), and text typing gives the same values on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.engine.polars_engine import PolarsEngine
from medlake.engine.spark_engine import SparkEngine, java_datetime_pattern
from medlake.engine.spark_session import get_spark
from medlake.lake.dwd import WATERMARK_KEY, DwdLoadReport, dwd_path, load_dwd_table
from medlake.lake.ods import load_source_table
from medlake.sources import source
from tests.conftest import deliver

pytestmark = pytest.mark.spark

_BASE = {"psn_no": "S1", "psn_name": "张三", "id_number": "110105491231002", "medins_code": "H1",
         "encounter_id": "E1", "setl_type": "outpatient", "setl_time": "2026-01-01 10:00:00",
         "begin_date": "2026-01-01", "end_date": "2026-01-01", "self_paid": "20", "setl_status": "1",
         "updated_at": "2026-01-01 10:00:00"}
DAYS = {
    "2026-01-01": [dict(_BASE, setl_id="A", total_amount="100", fund_paid="80", revision="1"),
                   dict(_BASE, setl_id="B", total_amount="50", fund_paid="40", revision="1")],
    "2026-01-02": [dict(_BASE, setl_id="A", total_amount="0", fund_paid="0", revision="2", setl_status="2"),
                   dict(_BASE, setl_id="B", total_amount="999", fund_paid="1", revision="0"),  # stale
                   dict(_BASE, setl_id="C", total_amount="10", fund_paid="12.5", revision="1",
                        setl_time="2026/1/2 9:05:00")],
    "2026-01-03": [dict(_BASE, setl_id="D", total_amount="10", fund_paid="tbd", revision="1")],  # all quarantined
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkEngine:
    cfg = Settings(home=tmp_path_factory.mktemp("spark_cross"))
    return SparkEngine(get_spark(cfg), cfg)


@pytest.fixture()
def engines(spark: SparkEngine) -> Iterator[dict[str, Engine]]:
    yield {"spark": spark, "polars": PolarsEngine()}


def _load_day(engine: Engine, settings: Settings, day: str) -> DwdLoadReport:
    deliver(settings, "YB330100", day, {"settlement": DAYS[day]})
    load_source_table(engine, settings, source("settlement"))
    return load_dwd_table(engine, settings, source("settlement"))


def _table(settings: Settings) -> pl.DataFrame:
    return pl.read_delta(dwd_path(settings, "settlement")).drop("_loaded_at").sort("setl_id")


@pytest.mark.parametrize("order", [("polars", "spark"), ("spark", "polars")], ids=["polars→spark", "spark→polars"])
def test_dwd_started_by_one_engine_is_continued_by_the_other(
    order: tuple[str, str], engines: dict[str, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (engines[name] for name in order)
    reference = Settings(home=tmp_path / "reference")
    for day in DAYS:
        _load_day(engines["polars"], reference, day)

    shared = Settings(home=tmp_path / "shared")
    monkeypatch.setenv("MEDLAKE_HOME", str(shared.home))
    day1 = _load_day(first, shared, "2026-01-01")
    assert (day1.rows_inserted, day1.watermark) == (2, 0)
    day2 = _load_day(second, shared, "2026-01-02")  # reads the watermark `first` committed
    assert (day2.rows_read, day2.rows_inserted, day2.rows_updated, day2.watermark) == (3, 1, 1, 1)
    assert first.commit_metadata(dwd_path(shared, "settlement"))[WATERMARK_KEY] == "1"
    day3 = _load_day(first, shared, "2026-01-03")  # every row quarantined: an empty MERGE still moves the mark
    assert (day3.rows_read, day3.rows_quarantined, day3.rows_inserted) == (1, 1, 0)
    for engine in (first, second):
        assert engine.commit_metadata(dwd_path(shared, "settlement"))[WATERMARK_KEY] == "2", engine.name
    assert load_dwd_table(second, shared, source("settlement")).rows_read == 0

    got, expected = _table(shared), _table(reference)
    assert got.schema == expected.schema
    assert got.equals(expected)
    assert got["setl_id"].to_list() == ["A", "B", "C"]
    assert got["total_amount"].to_list() == [Decimal("0"), Decimal("50"), Decimal("10")]
    assert got["setl_time"][2] == datetime(2026, 1, 2, 9, 5)
    assert got["id_number"].to_list() == ["11010519491231002X"] * 3  # 15 → 18 upgrade on both engines


TEXT = pl.DataFrame({
    "n": [" 12 ", "1.0", "+5", "x", "１２", None, "99999999999999999999", ""],
    "amount": ["1.23456", "1e3", " -0.5 ", "1,000", "１２", None, ".5", "abc"],
    "day": ["2024-01-02", "2024/1/2", "20240102", "2024-02-30", "2024-01-02 03:04:05", None, "x", " 2024-1-2 "],
    "at": ["2024-01-02 03:04:05", "2024-1-2 3:4:5", "20240102030405", "2024-01-02T03:04:05", "2024/01/02 03:04",
           "2024-01-02", "2024-13-01 00:00:00", None],
})
KINDS = {"n": "int", "amount": "decimal", "day": "date", "at": "datetime"}


def test_try_cast_text_gives_the_same_values_and_types(engines: dict[str, Engine]) -> None:
    out = {}
    for name, engine in engines.items():
        typed = engine.persist(engine.try_cast_text(engine.from_arrow(TEXT.to_arrow()), KINDS))
        out[name] = pl.from_arrow(engine.to_arrow(typed))
    assert out["spark"].schema == out["polars"].schema
    assert out["spark"].equals(out["polars"])
    polars = out["polars"]
    assert polars["n"].to_list() == [12, None, 5, None, None, None, None, None]
    assert polars["__raw_n"].to_list() == TEXT["n"].to_list()
    assert polars["amount"][0] == Decimal("1.2346") and polars["amount"][4] is None
    assert polars["at"].null_count() == 2 and polars["day"].null_count() == 4


@pytest.mark.parametrize(("strptime", "java"), [
    ("%Y-%m-%d %H:%M:%S", "yyyy-M-d H:m:s"),
    ("%Y-%m-%dT%H:%M:%S", "yyyy-M-d'T'H:m:s"),
    ("%Y%m%d%H%M%S", "yyyyMMddHHmmss"),
    ("%Y/%m/%d", "yyyy/M/d"),
])
def test_strptime_formats_become_spark_patterns(strptime: str, java: str) -> None:
    assert java_datetime_pattern(strptime) == java


def test_polars_empty_merge_still_commits_its_metadata(tmp_path: Path) -> None:
    engine, path = PolarsEngine(), str(tmp_path / "t")
    frame = pl.DataFrame({"k": ["a"], "v": [1]})
    engine.merge(engine.from_arrow(frame.to_arrow()), path, keys=("k",), metadata={"w": "1"})
    result = engine.merge(engine.from_arrow(frame.head(0).to_arrow()), path, keys=("k",), metadata={"w": "2"})
    assert (result.version, engine.commit_metadata(path)["w"], engine.row_count(path)) == (1, "2", 1)


def test_spark_row_of_the_resources_uses_spark_and_dbt_spark(tmp_path: Path) -> None:
    import yaml

    from medlake.resources import resources_for

    resources = resources_for(Settings(home=tmp_path, engine="spark"))
    assert isinstance(resources["lake"].engine, SparkEngine)
    dbt = resources["dbt"]
    assert dbt.target == "spark"
    profile = yaml.safe_load((Path(dbt.profiles_dir) / "profiles.yml").read_text(encoding="utf-8"))
    output = profile["medlake"]["outputs"]["spark"]
    assert (output["type"], output["method"], output["schema"]) == ("spark", "session", "theme")
    assert output["server_side_parameters"]["spark.sql.timestampType"] == "TIMESTAMP_NTZ"
    assert Path(dbt.profiles_dir).is_relative_to(tmp_path / "work")
