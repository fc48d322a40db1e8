"""Transcoding: known codes map by join, unmapped codes reach the review table with suggestions."""

from __future__ import annotations

from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.operators.base import OperatorContext, StepStatus
from medlake.transcode import (
    FrameMappings,
    TranscodeConfigError,
    TranscodeError,
    TranscodeOperator,
    review_path,
    suggest_codes,
)

H1, H2 = "H33010200001", "H33010200002"


def _mappings() -> FrameMappings:
    drug_h1 = pl.DataFrame({
        "local_code": ["D001", "D002"],
        "local_name": ["阿莫西林胶囊", "阿司匹林肠溶片"],
        "national_code": ["XJ01CAA040E001010100001", "XB01ACA056A006010100002"],
        "national_name": ["阿莫西林胶囊", "阿司匹林肠溶片"],
    })
    service_h1 = pl.DataFrame({
        "local_code": ["S01"], "local_name": ["血常规"], "national_code": ["250101015"], "national_name": ["血常规"],
    })
    catalogue = pl.DataFrame({
        "national_code": ["XJ01CAA040E001010100001", "XB01ACA056A006010100002", "XM01AEB060N003010100003"],
        "national_name": ["阿莫西林胶囊", "阿司匹林肠溶片", "布洛芬缓释胶囊"],
    })
    return FrameMappings({(H1, "drug"): drug_h1, (H1, "service"): service_h1}, catalogues={"drug": catalogue})


def _orders() -> nw.LazyFrame:
    return nw.from_native(pl.LazyFrame({
        "institution_code": [H1, H1, H1, H1, H2, H1],
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "item_category": ["drug", "drug", "service", "drug", "drug", "drug"],
        "local_item_code": ["D001", "D002", "S01", "D999", "D001", "D999"],
        "item_name": ["阿莫西林胶囊", "阿司匹林肠溶片", "血常规", "布洛芬缓释胶襄", "阿莫西林胶囊", "布洛芬缓释胶襄"],
    }))


@pytest.fixture
def ctx(tmp_path: Path) -> OperatorContext:
    return OperatorContext(engine=PolarsEngine(), settings=Settings(home=tmp_path), table="dwd.order_item")


def _operator(**extra: object) -> TranscodeOperator:
    config = {"column": "local_item_code", "category_column": "item_category", "name_column": "item_name",
              "out_name_column": "national_name", **extra}
    return TranscodeOperator.from_config(config, mappings=_mappings())


def test_known_local_code_transcodes(ctx: OperatorContext) -> None:
    result = _operator().run(_orders(), ctx)
    out = pl.from_arrow(ctx.engine.to_arrow(result.frame)).sort("order_id")
    assert out["national_code"].to_list() == [
        "XJ01CAA040E001010100001", "XB01ACA056A006010100002", "250101015", None, None, None,
    ]
    assert out["national_name"][0] == "阿莫西林胶囊"
    assert result.rows_in == result.rows_out == 6
    assert out.columns[:5] == ["institution_code", "order_id", "item_category", "local_item_code", "item_name"]


def test_mapping_rate_per_institution(ctx: OperatorContext) -> None:
    result = _operator().run(_orders(), ctx)
    rates = result.metrics["mapping_rate_by_institution"]
    assert rates[H1] == {"rows": 5, "mapped": 3, "rate": 0.6}
    assert rates[H2] == {"rows": 1, "mapped": 0, "rate": 0.0}  # H2 has no mapping table at all
    assert result.metrics["mapping_rate"] == 0.5
    assert result.status is StepStatus.WARN


def test_unmapped_codes_get_suggestions(ctx: OperatorContext) -> None:
    _operator().run(_orders(), ctx)
    review = pl.read_delta(str(review_path(ctx.settings))).sort("institution", "local_code")
    assert review.select("institution", "local_code", "occurrences").rows() == [(H1, "D999", 2), (H2, "D001", 1)]
    top = review.filter(pl.col("local_code") == "D999")["suggestions"][0]
    assert len(top) == 3
    assert top[0]["national_name"] == "布洛芬缓释胶囊"  # 胶襄 is a typo of 胶囊
    assert top[0]["score"] > top[1]["score"] >= top[2]["score"]


def test_review_rerun_keeps_first_seen_and_does_not_inflate(ctx: OperatorContext) -> None:
    _operator().run(_orders(), ctx)
    first = pl.read_delta(str(review_path(ctx.settings))).sort("local_code")
    _operator().run(_orders(), ctx)
    second = pl.read_delta(str(review_path(ctx.settings))).sort("local_code")
    assert second.height == first.height
    assert second["occurrences"].to_list() == first["occurrences"].to_list()
    assert second["first_seen"].to_list() == first["first_seen"].to_list()
    assert (second["last_seen"] >= first["last_seen"]).all()


def test_reject_unmapped(ctx: OperatorContext) -> None:
    result = _operator(on_unmapped="reject").run(_orders(), ctx)
    assert (result.rows_out, result.rows_rejected) == (3, 3)
    assert result.rejected is not None
    reasons = pl.from_arrow(ctx.engine.to_arrow(result.rejected))["_reject_reason"].unique().to_list()
    assert reasons == ["unmapped drug code"]


def test_suggestions_are_pinyin_aware() -> None:
    catalogue = pl.DataFrame({"national_code": ["A", "B"], "national_name": ["阿莫西林胶囊", "阿莫罗芬乳膏"]})
    best = suggest_codes(["阿莫西临胶囊"], catalogue, limit=2)[0]  # 临 sounds like 林
    assert best[0]["national_code"] == "A"


def test_config_errors_name_the_key() -> None:
    with pytest.raises(TranscodeConfigError, match="colum"):
        TranscodeOperator.from_config({"colum": "x", "category": "drug"})
    with pytest.raises(TranscodeConfigError, match="expected one of drug"):
        TranscodeOperator.from_config({"column": "x", "category": "drugs"})


def test_missing_column_names_table(ctx: OperatorContext) -> None:
    with pytest.raises(TranscodeError, match=r"dwd.order_item: transcode needs column\(s\) item_name"):
        _operator().run(_orders().drop("item_name"), ctx)


def test_bench_transcodes_every_row_at_the_generated_mapping_rate() -> None:
    from medlake.bench.transcode import bench_transcode

    figures = bench_transcode(20_000, codes=500, unmapped_share=0.02)
    assert figures["rows_out"] == 20_000
    assert figures["mapping_rate"] == pytest.approx(0.98, abs=0.005) and figures["unmapped_codes"] > 0


def test_registry_mapping_transcodes_a_known_code(ctx: OperatorContext) -> None:
    """Through the real standards registry's mapping table for a demo hospital."""
    from medlake.transcode import RegistryMappings

    mappings = RegistryMappings()
    table = mappings.mapping_table(H1, "drug")
    assert table.height >= 200
    local, national = table["local_code"][0], table["national_code"][0]
    frame = nw.from_native(pl.LazyFrame({"institution_code": [H1], "local_item_code": [local]}))
    operator = TranscodeOperator.from_config({"column": "local_item_code", "category": "drug"}, mappings=mappings)
    out = pl.from_arrow(ctx.engine.to_arrow(operator.run(frame, ctx).frame))
    assert out["national_code"].to_list() == [national]
