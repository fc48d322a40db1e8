"""``python -m medlake.bench spark_merge``: the settlement MERGE (and a plain append) on Spark ``local[2]`` against
the embedded engine, with the Spark/polars time ratio.

Each engine gets its own copy of the same target table; the timings cover the engine call only (Spark's session
start is reported apart), and the two merged tables are compared row for row afterwards, so a fast but wrong engine
cannot win.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from medlake.bench.measure import timed
from medlake.bench.merge import settlement_batches
from medlake.config import Settings
from medlake.config import settings as current_settings
from medlake.engine.base import Engine
from medlake.engine.polars_engine import PolarsEngine

__all__ = ["bench_merge"]

_KEYS = ("setl_id",)


def _run(engine: Engine, target: pl.DataFrame, increment: pl.DataFrame, root: Path) -> dict[str, Any]:
    merged, appended = str(root / engine.name / "merged"), str(root / engine.name / "appended")
    for path in (merged, appended):
        engine.overwrite(engine.from_arrow(target.to_arrow()), path)
    append_s, _ = timed(lambda: engine.append(engine.from_arrow(increment.to_arrow()), appended))
    merge_s, result = timed(lambda: engine.merge(
        engine.from_arrow(increment.to_arrow()), merged, keys=_KEYS, version_column="updated_at"))
    append_s, merge_s = round(append_s, 3), round(merge_s, 3)
    return {
        "append_s": append_s,
        "merge_s": merge_s,
        "merge_over_append": round(merge_s / append_s, 2) if append_s else None,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_after_merge": engine.row_count(merged),
    }


def bench_merge(target_rows: int, increment_rows: int | None = None, cfg: Settings | None = None) -> dict[str, Any]:
    """MERGE and append of ``increment_rows`` (default: a tenth of the target) into ``target_rows`` on both engines,
    with the Spark/polars ratio. Scratch tables go under ``cfg.work``."""
    from medlake.engine.spark_engine import SparkEngine
    from medlake.engine.spark_session import get_spark

    cfg = cfg or current_settings()
    cfg.work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench_merge_", dir=cfg.work))
    increment_rows = target_rows // 10 if increment_rows is None else increment_rows
    try:
        target, increment = settlement_batches(target_rows, increment_rows)
        start_s, spark = timed(lambda: get_spark(cfg))
        figures = {"polars": _run(PolarsEngine(), target, increment, root)}
        figures["spark"] = _run(SparkEngine(spark, cfg), target, increment, root)
        tables = [pl.read_delta(str(root / name / "merged")).sort("setl_id") for name in ("polars", "spark")]
        return {
            "target_rows": target_rows,
            "increment_rows": increment_rows,
            "spark_master": spark.sparkContext.master,
            "spark_session_start_s": round(start_s, 3),
            **figures,
            "spark_over_polars_merge": round(figures["spark"]["merge_s"] / figures["polars"]["merge_s"], 2),
            "spark_over_polars_append": round(figures["spark"]["append_s"] / figures["polars"]["append_s"], 2),
            "merged_tables_identical": tables[0].equals(tables[1]),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
