"""``python -m medlake.bench maintenance``: ``dwd/settlement`` built through daily increments, read before and after
maintenance (OPTIMIZE with Z-order on ``setl_id``).

Each day an insurer delivers settlements (80 % new, 20 % re-settlements of the previous day's ones with a higher
revision; a second lake gets new settlements only) as a CSV batch with a manifest; ODS lands it and DWD MERGEs it,
exactly as the pipeline does (:func:`medlake.lake.ods.load_source_table`, :func:`medlake.lake.dwd.load_dwd_table`).
Then the table's file count,
a full scan and point lookups by ``setl_id`` are timed, maintenance runs, and the same reads are timed again.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from medlake.bench.measure import timed
from medlake.config import Settings
from medlake.engine import Engine, get_engine
from medlake.lake.dwd import load_dwd_table
from medlake.lake.maintenance import MaintenanceTarget, maintain_table, zorder_columns
from medlake.lake.manifest import Manifest, ManifestFile, file_sha256, write_manifest
from medlake.lake.ods import load_source_table
from medlake.sources import source

__all__ = ["bench_maintenance"]

_INSURER = "YB330100"
_START = date(2026, 1, 1)
_REVISED_SHARE = 0.2
_LOOKUPS = 5


def _settlements(ids: list[int], day: int, revision: int) -> pl.DataFrame:
    """Settlement rows as a front-end machine delivers them (text), one per id."""
    when = _START + timedelta(days=day)
    frame = pl.DataFrame({"n": ids}, schema={"n": pl.Int64})
    cents = (pl.col("n") * 7919 % 900_000 + 1_000)
    return frame.select(
        pl.col("n").cast(pl.Utf8).str.zfill(12).alias("setl_id"),
        pl.format("P{}", (pl.col("n") * 104_729 % 10_000_000).cast(pl.Utf8).str.zfill(10)).alias("psn_no"),
        pl.format("参保人{}", pl.col("n") % 1000).alias("psn_name"),
        pl.lit("").alias("id_number"),
        pl.format("H{}", (pl.col("n") % 20).cast(pl.Utf8).str.zfill(4)).alias("medins_code"),
        pl.format("E{}", pl.col("n")).alias("encounter_id"),
        pl.when(pl.col("n") % 5 == 0).then(pl.lit("inpatient")).otherwise(pl.lit("outpatient")).alias("setl_type"),
        pl.format("{} {}:{}:00", pl.lit(when.isoformat()), (pl.col("n") % 24).cast(pl.Utf8).str.zfill(2),
                  (pl.col("n") % 60).cast(pl.Utf8).str.zfill(2)).alias("setl_time"),
        pl.lit(when.isoformat()).alias("begin_date"),
        pl.lit(when.isoformat()).alias("end_date"),
        (cents / 100).round(2).cast(pl.Utf8).alias("total_amount"),
        (cents * 7 // 10 / 100).round(2).cast(pl.Utf8).alias("fund_paid"),
        ((cents - cents * 7 // 10) / 100).round(2).cast(pl.Utf8).alias("self_paid"),
        pl.lit("1" if revision == 1 else "3").alias("setl_status"),
        pl.lit(str(revision)).alias("revision"),
        pl.lit(f"{when.isoformat()} 23:00:00").alias("updated_at"),
    )


def _deliver(settings: Settings, day: int, rows: pl.DataFrame) -> None:
    spec = source("settlement")
    folder = settings.landing / _INSURER / (_START + timedelta(days=day)).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    rows.select(spec.column_names).write_csv(folder / "settlement.csv")
    sums = rows.select(pl.col(c).cast(pl.Decimal(28, 4)).sum() for c in spec.amount_columns).row(0)
    entry = ManifestFile("settlement", "settlement.csv", "csv", "utf-8", rows.height,
                         file_sha256(folder / "settlement.csv"),
                         {c: f"{v:.4f}" for c, v in zip(spec.amount_columns, sums, strict=True)})
    write_manifest(folder, Manifest(_INSURER, f"{_INSURER}-{folder.name}", folder.name,
                                    f"{folder.name}T23:30:00", (entry,)))


def _read_seconds(path: str, keys: list[str]) -> dict[str, Any]:
    """Full scan (count + fund sum, median of 3 after one untimed warm-up) and point lookups by ``setl_id``
    (median over the keys)."""
    def scan() -> pl.DataFrame:
        return pl.scan_delta(path).select(pl.len(), pl.col("fund_paid").cast(pl.Decimal(28, 4)).sum()).collect()

    total = scan()
    scans = [timed(scan)[0] for _ in range(3)]
    lookups = []
    for key in keys:
        seconds, found = timed(lambda key=key: pl.scan_delta(path).filter(pl.col("setl_id") == key).collect())
        lookups.append(seconds)
        assert found.height >= 1, f"setl_id {key} not found in {path}"
    return {"rows": int(total.item(0, 0)), "full_scan_seconds": round(statistics.median(scans), 4),
            "point_lookup_median_seconds": round(statistics.median(lookups), 4)}


def _maintained(engine: Engine, settings: Settings, layer: str, name: str, keys: list[str]) -> dict[str, Any]:
    """Files and reads of one table before and after :func:`maintain_table`."""
    path = str(settings.table_path(layer, name))
    stats, reads = engine.table_stats(path), _read_seconds(path, keys)
    target = MaintenanceTarget(layer, name, path, zorder_columns(layer, name))
    seconds, report = timed(lambda: maintain_table(engine, settings, target))
    after = _read_seconds(path, keys)
    assert after["rows"] == reads["rows"]
    return {
        "zorder": list(target.zorder),
        "before": {"files": stats.files, "bytes": stats.bytes, "version": stats.version, **reads},
        "maintenance_seconds": round(seconds, 2),
        "after": {"files": report.files_after, "bytes": report.bytes_after, "version": report.version_after,
                  **after},
        "files_vacuumed": report.files_vacuumed,
    }


def bench_maintenance(rows_per_day: int = 30_000, days: int = 30) -> dict[str, Any]:
    """Two lakes: increments with 20 % re-settlements (each MERGE rewrites the partitions it matches, so they stay
    one file each), and increments of new settlements only (each MERGE adds a file to the partitions it inserts
    into)."""
    figures: dict[str, Any] = {"cores": os.cpu_count(), "days": days, "rows_per_day": rows_per_day}
    for label, revised_share in (("with_resettlements", _REVISED_SHARE), ("new_only", 0.0)):
        with tempfile.TemporaryDirectory(prefix="medlake-bench-maintenance-") as tmp:
            figures[label] = _bench(Settings(home=Path(tmp) / "medlake"), rows_per_day, days, revised_share)
    return figures


def _build(engine: Engine, settings: Settings, rows_per_day: int, days: int, revised_share: float,
           rng: random.Random) -> int:
    """Deliver, land and MERGE ``days`` daily increments; the number of settlement ids used."""
    spec = source("settlement")
    next_id, recent = 0, []
    for day in range(days):
        revised = rng.sample(recent, min(int(rows_per_day * revised_share), len(recent)))
        fresh = list(range(next_id, next_id + rows_per_day - len(revised)))
        next_id += len(fresh)
        batch = pl.concat([_settlements(fresh, day, 1), _settlements(sorted(revised), day, day + 2)])
        _deliver(settings, day, batch)
        load_source_table(engine, settings, spec)
        load_dwd_table(engine, settings, spec)
        recent = fresh
    return next_id


def _bench(settings: Settings, rows_per_day: int, days: int, revised_share: float) -> dict[str, Any]:
    engine = get_engine("polars")
    rng = random.Random(7)
    build, ids = timed(lambda: _build(engine, settings, rows_per_day, days, revised_share, rng))
    keys = [str(k).zfill(12) for k in rng.sample(range(ids), _LOOKUPS)]
    return {
        "revised_share": revised_share, "build_seconds": round(build, 1),
        "dwd_settlement": _maintained(engine, settings, "dwd", "settlement", keys),
    }
