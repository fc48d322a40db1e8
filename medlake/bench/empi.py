"""``python -m medlake.bench empi``: the EMPI against synthetic truth (:func:`medlake.synth.synthetic_register`):
pairwise precision/recall/F1, wall time, peak RSS, an incremental load. ``python -m medlake.bench.empi N --backend
spark`` links on the Spark backend instead."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from medlake.bench.measure import peak_rss_mb, timed
from medlake.config import ENGINES
from medlake.empi.index import MasterPatientIndex
from medlake.empi.model import ModelSettings
from medlake.empi.operator import DWD_PATIENT_FIELDS
from medlake.synth.register import synthetic_register

__all__ = ["bench_empi", "pairwise_quality"]


def _pairs(frame: pl.DataFrame, *by: str) -> int:
    return int(frame.group_by(*by).len().select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item())


def pairwise_quality(assignments: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``record_id → master_id`` against ``record_id → person_id``."""
    joined = assignments.join(truth.select("record_id", "person_id"), on="record_id")
    true_positive = _pairs(joined, "master_id", "person_id")
    predicted, actual = _pairs(joined, "master_id"), _pairs(joined, "person_id")
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _register(n_records: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records and truth from :func:`medlake.synth.synthetic_register` (pass your own to bench_empi)."""
    reg = synthetic_register(n_records, seed=seed)
    record_id = pl.col("institution_code") + ":" + pl.col("patient_id")
    return reg.records.with_columns(record_id=record_id), reg.truth.with_columns(record_id=record_id)


def bench_empi(
    n_records: int,
    *,
    incremental: int = 10_000,
    seed: int = 7,
    store_dir: Path | None = None,
    model_settings: ModelSettings | None = None,
    records: pl.DataFrame | None = None,
    truth: pl.DataFrame | None = None,
    backend: str = "polars",
) -> dict[str, Any]:
    """Link ``n_records`` end to end, then ``incremental`` more against them; figures as a dict.

    Pass ``records`` (DWD patient shape with ``record_id``) and ``truth`` (record_id, person_id) to benchmark
    other data; otherwise the synthetic register is generated (not timed). ``backend`` is the engine whose Splink
    backend links (``polars``: DuckDB; ``spark``: the SparkSession, started before the clock starts).
    """
    if records is None or truth is None:
        records, truth = _register(n_records + incremental, seed)
    base, extra = records.head(records.height - incremental), records.tail(incremental)
    from medlake.engine import get_engine

    engine = get_engine(backend)
    # start the engine's Splink backend before the clock starts (a JVM start is not the EMPI's cost)
    engine.splink((model_settings or ModelSettings()).splink_options()).close()
    with tempfile.TemporaryDirectory(prefix="medlake-empi-bench-") as scratch:
        mpi = MasterPatientIndex(store_dir or Path(scratch), model_settings=model_settings, engine=engine)
        full_seconds, full = timed(lambda: mpi.link(base, DWD_PATIENT_FIELDS, batch_id="bench-full"))
        quality = pairwise_quality(full.assignments, truth)
        inc_seconds, inc = (timed(lambda: mpi.link(extra, DWD_PATIENT_FIELDS, batch_id="bench-incremental"))
                            if incremental else (0.0, None))
        after = pairwise_quality(mpi.assignments(), truth) if inc else quality
    return {
        "backend": backend,
        "records": base.height,
        **quality,
        "seconds": round(full_seconds, 2),
        "masters": full.masters,
        "review_pairs": full.review_pairs,
        "incremental_records": incremental,
        "incremental_seconds": round(inc_seconds, 2),
        "incremental_merges": inc.merges if inc else 0,
        "f1_after_incremental": after["f1"],
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medlake.bench.empi", description=__doc__)
    parser.add_argument("records", type=int, nargs="?", default=100_000)
    parser.add_argument("--incremental", type=int, default=10_000)
    parser.add_argument("--backend", choices=ENGINES, default="polars",
                        help="engine whose Splink backend links (polars: DuckDB, spark: SparkSession)")
    args = parser.parse_args(argv)
    print(bench_empi(args.records, incremental=args.incremental, backend=args.backend))


if __name__ == "__main__":
    main(sys.argv[1:])
