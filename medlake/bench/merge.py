"""``python -m medlake.bench merge``: MERGE of a settlement increment into a large DWD-partitioned table against
appending the same rows, on the embedded engine (delta-rs)."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from medlake.bench.measure import timed

__all__ = ["bench_merge_vs_append", "settlement_batches"]

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


def bench_merge_vs_append(target_rows: int = 10_000_000, increment_rows: int = 1_000_000) -> dict[str, Any]:
    """MERGE a settlement increment (half revisions of existing rows, half new) into a ``target_rows`` table, vs
    appending the same rows to an identical table, on the embedded engine (delta-rs). Two increments: revisions
    spread uniformly over the whole table (every data file is rewritten), and revisions of the most recent
    settlements (refunds and re-settlements arrive within weeks; the table is in load order)."""
    import narwhals as nw

    from medlake.engine import get_engine
    from medlake.lake.dwd import dwd_partitions, key_block_expr
    from medlake.sources import source

    engine = get_engine("polars")
    spec = source("settlement")
    partitions = dwd_partitions(spec)  # the DWD layout: blocks of consecutive settlement IDs
    target, uniform = settlement_batches(target_rows, increment_rows)
    updates = min(increment_rows // 2, target_rows)
    recent_ids = pl.concat([target["setl_id"].tail(updates), uniform["setl_id"].slice(updates)])
    recent = uniform.with_columns(recent_ids.alias("setl_id"))
    figures: dict[str, Any] = {"target_rows": target_rows, "increment_rows": increment_rows,
                               "partitions": partitions}

    def frame(data: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(data.lazy()).with_columns(key_block_expr(spec))

    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: f"{tmp}/{name}" for name in ("appended", "uniform", "recent")}
        for path in paths.values():  # a MERGE into a missing table creates it with the DWD partitioning
            engine.merge(frame(target), path, keys=("setl_id",), partition_by=partitions)
        del target
        append_s, _ = timed(lambda: engine.append(frame(uniform), paths["appended"]))
        figures["append_seconds"] = round(append_s, 2)
        for name, increment in (("uniform", uniform), ("recent", recent)):
            seconds, result = timed(lambda name=name, increment=increment: engine.merge(
                frame(increment), paths[name], keys=("setl_id",), version_column="updated_at",
                partition_by=partitions))
            figures[f"merge_{name}_seconds"] = round(seconds, 2)
            figures[f"merge_{name}_over_append"] = round(seconds / figures["append_seconds"], 2)
            metrics = result.metrics
            figures[f"merge_{name}_rows"] = {
                "updated": result.rows_updated, "inserted": result.rows_inserted,
                "files_scanned": metrics.get("num_target_files_scanned"),
                "files_skipped": metrics.get("num_target_files_skipped_during_scan"),
            }
    return figures
