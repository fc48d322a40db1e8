"""Manual unlinks inside a master: the master is re-clustered alone, and the founder's part keeps its ID."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from medlake.empi.batch import id_pairs
from medlake.empi.clusters import constrained_components
from medlake.empi.features import FEATURE_SCHEMA
from medlake.empi.masters import master_id
from medlake.empi.model import LinkageModel
from medlake.empi.store import TABLES

__all__ = ["MasterSplits", "split_masters"]


@dataclass(frozen=True)
class MasterSplits:
    """The stored records and masters after the splits, the split audit events and the records that moved."""

    others: pl.DataFrame
    golden: pl.DataFrame
    audit: pl.DataFrame
    record_ids: list[str]


def split_masters(
    others: pl.DataFrame,
    golden: pl.DataFrame,
    unlinks: pl.DataFrame,
    model: LinkageModel,
    link_threshold: float,
    batch: str,
    now: object,
) -> MasterSplits:
    """Re-cluster each master that holds both records of a manual unlink; the founder's part keeps the ID."""
    audit = pl.DataFrame(schema=TABLES["empi_audit"])
    if unlinks.height == 0 or others.height == 0:
        return MasterSplits(others, golden, audit, [])
    where = others.select("record_id", "master_id")
    violated = (
        unlinks.join(where.rename({"record_id": "record_a", "master_id": "m_a"}), on="record_a")
        .join(where.rename({"record_id": "record_b", "master_id": "m_b"}), on="record_b")
        .filter(pl.col("m_a") == pl.col("m_b"))
    )
    if violated.height == 0:
        return MasterSplits(others, golden, audit, [])
    taken = set(others["master_id"].unique().to_list()) | set(golden["master_id"].to_list())
    founders = dict(golden.select("master_id", "first_record_id").iter_rows())
    updates: list[pl.DataFrame] = []
    events: list[dict[str, object]] = []
    new_golden: list[dict[str, object]] = []
    for master in violated["m_a"].unique().sort().to_list():
        members = others.filter(pl.col("master_id") == master).sort("linked_at", "record_id")
        ids = members["record_id"].to_list()
        position = {r: i for i, r in enumerate(ids)}
        pairs = pl.concat([
            model.score_within(members.select(list(FEATURE_SCHEMA)), blocking=["1=1"]),
            id_pairs(members, None),
        ])
        pairs = pairs.filter(pl.col("score") >= link_threshold)
        edges = pl.DataFrame({
            "a": [position[a] for a in pairs["record_a"]], "b": [position[b] for b in pairs["record_b"]],
            "score": pairs["score"], "forced": [False] * pairs.height,
        }, schema={"a": pl.Int64, "b": pl.Int64, "score": pl.Float64, "forced": pl.Boolean})
        apart = [
            (position[a], position[b]) for a, b in unlinks.select("record_a", "record_b").iter_rows()
            if a in position and b in position
        ]
        valid = {
            position[r]: frozenset([i]) for r, i, ok in members.select("record_id", "id_number", "id_valid")
            .iter_rows() if ok
        }
        labels = constrained_components(len(ids), edges, valid, apart)
        founder = founders.get(master, ids[0])
        keep_label = labels[position[founder]] if founder in position else labels[0]
        master_of: dict[int, str] = {int(keep_label): master}
        for label in sorted(set(labels.tolist()) - {int(keep_label)}):
            first = ids[int(np.flatnonzero(labels == label)[0])]
            master_of[label] = master_id(first, taken)
            new_golden.append({"master_id": master_of[label], "created_at": now, "first_record_id": first})
            why = violated.filter(pl.col("m_a") == master).row(0, named=True)
            events.append({
                "event_time": now, "event": "split", "master_id": master, "other_master_id": master_of[label],
                "record_a": why["record_a"], "record_b": why["record_b"], "score": None,
                "rule": "manual_unlink", "reason": f"{why['who']}: {why['why']}", "batch_id": batch,
            })
        updates.append(members.with_columns(
            master_id=pl.Series([master_of[int(x)] for x in labels], dtype=pl.Utf8),
            match_rule=pl.when(pl.Series(labels) != keep_label).then(pl.lit("manual_unlink"))
            .otherwise(pl.col("match_rule")),
        ))
    updated = pl.concat(updates)
    others = pl.concat([others.filter(~pl.col("record_id").is_in(updated["record_id"].implode())), updated])
    golden = pl.concat([golden, pl.DataFrame(new_golden, schema=golden.schema)])
    audit = pl.DataFrame(events, schema=TABLES["empi_audit"])
    return MasterSplits(others, golden, audit, updated["record_id"].to_list())
