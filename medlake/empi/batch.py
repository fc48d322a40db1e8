"""One linking batch: the frames a run scores and clusters, and the changes it writes back.

A run of :class:`medlake.empi.index.MasterPatientIndex` reads the stored state, scores the incoming records
(:class:`LinkBatch`), clusters them (:func:`medlake.empi.clustering.cluster_batch`) and writes the
:class:`BatchChanges`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from medlake.empi.model import PAIR_SCHEMA

__all__ = ["BatchChanges", "LinkBatch", "id_pairs", "pair_key"]


@dataclass(frozen=True)
class LinkBatch:
    """What one run clusters. Existing records stand for their master; incoming ones are clustered anew."""

    batch_id: str
    now: datetime
    others: pl.DataFrame  # index rows not delivered again (masters already re-clustered by manual unlinks)
    incoming: pl.DataFrame  # new and changed records (FEATURE_SCHEMA)
    changed: pl.DataFrame  # the incoming records the index holds already, with their previous master
    golden: pl.DataFrame  # master_id, created_at, first_record_id of every master
    pairs: pl.DataFrame  # scored and ID-rule pairs (PAIR_SCHEMA)
    links: pl.DataFrame  # latest manual links: record_a, record_b, why, who
    unlinks: pl.DataFrame  # latest manual unlinks
    split_ids: list[str]  # records whose master a manual unlink split in this run
    used_master_ids: frozenset[str]  # master IDs retired earlier (never given out again)


@dataclass(frozen=True)
class BatchChanges:
    """What one run writes: index rows, golden records, masters merged away, audit events and pairs to review."""

    index_rows: pl.DataFrame
    golden: pl.DataFrame
    retired: list[str]
    audit: pl.DataFrame
    review: pl.DataFrame


def pair_key(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.min_horizontal(a, b), pl.max_horizontal(a, b)], separator="\x1f")


def id_pairs(left: pl.DataFrame, right: pl.DataFrame | None) -> pl.DataFrame:
    """Deterministic rule: valid GB 11643 ID numbers agree (after 15→18 normalization)."""
    lv = left.filter(pl.col("id_valid")).select("record_id", "id_number")
    if right is None:  # within: chain each record to the first with the same ID
        firsts = lv.group_by("id_number").agg(pl.col("record_id").min().alias("_first"))
        pairs = lv.join(firsts, on="id_number").filter(pl.col("record_id") != pl.col("_first"))
        pairs = pairs.select(pl.col("_first").alias("record_a"), pl.col("record_id").alias("record_b"))
    else:
        rv = right.filter(pl.col("id_valid")).select(pl.col("record_id").alias("record_b"), "id_number")
        pairs = lv.rename({"record_id": "record_a"}).join(rv, on="id_number").select("record_a", "record_b")
    return pairs.with_columns(score=pl.lit(1.0), rule=pl.lit("id_number")).cast(PAIR_SCHEMA)  # type: ignore[arg-type]
