"""``python -m medlake.bench transcode``: throughput of the transcode operator on generated order lines (no files
needed, nothing downloaded)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from medlake.bench.measure import timed
from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.operators.base import OperatorContext, OperatorResult
from medlake.transcode.mappings import FrameMappings
from medlake.transcode.operator import TranscodeOperator

__all__ = ["bench_transcode"]

_INSTITUTIONS = ("H33010200001", "H33010200002", "H33010200003", "H33010200004")
_NAMES = ("阿莫西林胶囊", "头孢克肟片", "阿司匹林肠溶片", "布洛芬缓释胶囊", "二甲双胍片", "氨氯地平片")


def _catalogue(codes: int) -> pl.DataFrame:
    return pl.DataFrame({
        "national_code": [f"X{i:022d}" for i in range(codes)],
        "national_name": [f"{_NAMES[i % len(_NAMES)]}{i}" for i in range(codes)],
    })


def _mapping(catalogue: pl.DataFrame, institution: int) -> pl.DataFrame:
    return catalogue.select(
        pl.format("L{}-{}", pl.lit(institution), pl.int_range(pl.len())).alias("local_code"),
        pl.col("national_name").alias("local_name"),
        "national_code",
        "national_name",
    )


def _orders(rows: int, codes: int, unmapped_share: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    inst = rng.integers(0, len(_INSTITUTIONS), rows)
    code = rng.integers(0, codes, rows)
    unknown = rng.random(rows) < unmapped_share  # codes the mapping tables do not know (1 in 10 are distinct)
    code = np.where(unknown, codes + code % max(1, codes // 10), code)
    return pl.DataFrame({"inst": inst, "code": code}).select(
        pl.col("inst").replace_strict(dict(enumerate(_INSTITUTIONS)), return_dtype=pl.Utf8).alias(
            "institution_code"
        ),
        pl.format("O{}", pl.int_range(pl.len())).alias("order_id"),
        pl.lit("drug").alias("item_category"),
        pl.format("L{}-{}", pl.col("inst"), pl.col("code")).alias("local_item_code"),
        pl.format("{}{}", pl.lit("阿莫西林胶囊"), pl.col("code")).alias("item_name"),
    )


def bench_transcode(rows: int, *, codes: int = 5_000, unmapped_share: float = 0.02, seed: int = 7) -> dict[str, Any]:
    """Transcode ``rows`` generated drug order lines from 4 institutions; returns rows/s and the figures."""
    catalogue = _catalogue(codes)
    mappings = FrameMappings(
        {(inst, "drug"): _mapping(catalogue, i) for i, inst in enumerate(_INSTITUTIONS)},
        catalogues={"drug": catalogue},
    )
    orders = _orders(rows, codes, unmapped_share, seed)
    operator = TranscodeOperator.from_config(
        {"column": "local_item_code", "category": "drug", "name_column": "item_name"}, mappings=mappings
    )
    with tempfile.TemporaryDirectory(prefix="medlake-bench-") as home:
        engine = PolarsEngine()
        ctx = OperatorContext(engine=engine, settings=Settings(home=Path(home)), table="bench.order_item")

        def transcode() -> tuple[OperatorResult, int]:
            result = operator.run(nw.from_native(orders.lazy()), ctx)
            return result, engine.to_arrow(result.frame).num_rows

        seconds, (result, out_rows) = timed(transcode)
    join_seconds = result.metrics["seconds_join"]
    return {
        "rows": rows,
        "rows_out": out_rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "join_rows_per_second": round(rows / join_seconds) if join_seconds else None,
        "seconds_review": result.metrics["seconds_review"],
        "mapping_rate": result.metrics["mapping_rate"],
        "unmapped_codes": result.metrics["unmapped_codes"],
        "mapping_codes_per_institution": codes,
    }
