"""Benchmark: the settlement MERGE (and a plain append) on Spark ``local[2]`` against the embedded engine.

``python -m medlake.engine.spark_bench 1000000 100000`` prints one JSON object. Each engine gets its own copy of
the same target table; the timings cover the engine call only (Spark's session start is reported apart), and the
two merged tables are compared row for row afterwards, so a fast but wrong engine cannot win.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from medlake.config import Settings
from medlake.config import settings as current_settings
from medlake.engine.base import Engine
from medlake.engine.polars_engine import PolarsEngine

__all__ = ["bench_merge", "settlement_batches"]

_KEYS = ("setl_id",)
_EPOCH = datetime(2024, 1, 1)


def settlement_batches(target_rows: int, increment_rows: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A settlement target and an increment: half re-deliveries of existing ``setl_id`` (newer), half new ones."""
    updates = min(increment_rows // 2, target_rows)

    def batch(ids: pl.Series, start: datetime, salt: int) -> pl.DataFrame:
        n = ids.len()
        frame = pl.DataFrame({"setl_id": ids}).with_columns(
            pl.lit("YB330100").alias("institution_code"),
            (pl.col("setl_id").hash(seed + salt) % 10_000_000).cast(pl.Utf8).str.zfill(10).alias("psn_no"),
            ((pl.col("setl_id").hash(seed + salt + 1) % 5_000_000).cast(pl.Decimal(18, 4)) / 100)
            .cast(pl.Decimal(18, 4)).alias("total_amount"),
            pl.datetime_range(start, start + timedelta(seconds=max(n - 1, 0)), "1s", eager=True)
            .head(n).alias("setl_time"),
        )
        return frame.with_columns(
            (pl.col("total_amount") * pl.lit(0.7).cast(pl.Decimal(18, 4))).cast(pl.Decimal(18, 4))
            .alias("fund_paid"),
            (pl.col("setl_time") + pl.duration(minutes=5)).alias("updated_at"),
        )

    target = batch(pl.Series(range(target_rows)).cast(pl.Utf8).str.zfill(12), _EPOCH, 0)
    fresh = range(target_rows, target_rows + increment_rows - updates)
    increment_ids = pl.concat([
        pl.Series(range(0, target_rows, max(target_rows // max(updates, 1), 1))).head(updates),
        pl.Series(fresh),
    ]).cast(pl.Utf8).str.zfill(12)
    return target, batch(increment_ids, _EPOCH + timedelta(seconds=target_rows), 1)  # every row newer


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return round(time.perf_counter() - start, 3), result


def _run(engine: Engine, target: pl.DataFrame, increment: pl.DataFrame, root: Path) -> dict[str, Any]:
    merged, appended = str(root / engine.name / "merged"), str(root / engine.name / "appended")
    for path in (merged, appended):
        engine.overwrite(engine.from_arrow(target.to_arrow()), path)
    append_s, _ = _timed(lambda: engine.append(engine.from_arrow(increment.to_arrow()), appended))
    merge_s, result = _timed(lambda: engine.merge(
        engine.from_arrow(increment.to_arrow()), merged, keys=_KEYS, version_column="updated_at"))
    return {
        "append_s": append_s,
        "merge_s": merge_s,
        "merge_over_append": round(merge_s / append_s, 2) if append_s else None,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_after_merge": engine.row_count(merged),
    }


def bench_merge(target_rows: int, increment_rows: int, cfg: Settings | None = None) -> dict[str, Any]:
    """MERGE and append of ``increment_rows`` into ``target_rows`` on both engines, with the Spark/polars ratio."""
    from medlake.engine.spark_engine import SparkEngine
    from medlake.engine.spark_session import get_spark

    cfg = cfg or current_settings()
    cfg.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_merge_", dir=cfg.work))
    try:
        target, increment = settlement_batches(target_rows, increment_rows)
        start_s, spark = _timed(lambda: get_spark(cfg))
        figures = {"polars": _run(PolarsEngine(), target, increment, root)}
        figures["spark"] = _run(SparkEngine(spark, cfg), target, increment, root)
        tables = [pl.read_delta(str(root / name / "merged")).sort("setl_id") for name in ("polars", "spark")]
        return {
            "target_rows": target_rows,
            "increment_rows": increment_rows,
            "spark_master": spark.sparkContext.master,
            "spark_session_start_s": start_s,
            **figures,
            "spark_over_polars_merge": round(figures["spark"]["merge_s"] / figures["polars"]["merge_s"], 2),
            "spark_over_polars_append": round(figures["spark"]["append_s"] / figures["polars"]["append_s"], 2),
            "merged_tables_identical": tables[0].equals(tables[1]),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:3]] or [1_000_000, 100_000]
    print(json.dumps(bench_merge(*sizes), indent=1))
