"""Clustering one linking batch: records and masters as graph nodes, accepted edges, constrained components, then
the masters each cluster keeps or gets, and the merge audit and review pairs that follow.

Existing records stand for their master (``M:<master_id>``), incoming records are their own node (``R:<record_id>``),
so linking never renumbers a master: a cluster joining several masters keeps the oldest and audits a merge.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from medlake.empi.batch import BatchChanges, LinkBatch, pair_key
from medlake.empi.clusters import constrained_components
from medlake.empi.golden import golden_records
from medlake.empi.masters import master_id
from medlake.empi.model import PAIR_SCHEMA
from medlake.empi.store import TABLES

__all__ = ["cluster_batch"]


def cluster_batch(batch: LinkBatch, link_threshold: float, source_priority: Mapping[str, int]) -> BatchChanges:
    """Cluster a batch's records and masters on its accepted edges (ID rule, manual links, scores at or above
    ``link_threshold``) under the cannot-link constraints, and derive what the batch writes."""
    others, incoming, changed, pairs = batch.others, batch.incoming, batch.changed, batch.pairs
    links, unlinks = batch.links, batch.unlinks
    # Node of a record: incoming records are their own node, existing records stand for their master.
    involved = pl.concat([frame[c] for frame in (pairs, links, unlinks) for c in ("record_a", "record_b")])
    node_of = pl.concat([
        incoming.select("record_id", ("R:" + pl.col("record_id")).alias("node")),
        others.filter(pl.col("record_id").is_in(involved.unique().implode()))
        .select("record_id", ("M:" + pl.col("master_id")).alias("node")),
    ])
    unlink_keys = unlinks.select(pair_key(pl.col("record_a"), pl.col("record_b")).alias("_pair"))
    pairs = pairs.with_columns(_pair=pair_key(pl.col("record_a"), pl.col("record_b"))).join(
        unlink_keys, on="_pair", how="anti"
    )
    manual = links.select("record_a", "record_b", score=pl.lit(1.0), rule=pl.lit("manual_link"))
    changed_edges = changed.select(
        pl.col("record_id").alias("record_a"), pl.lit(None, pl.Utf8).alias("record_b"),
        pl.col("match_score").fill_null(1.0).alias("score"), pl.lit("previous_master").alias("rule"),
        ("M:" + pl.col("master_id")).alias("_node_b"),
    )
    scored = pl.concat([pairs.drop("_pair"), manual.cast(PAIR_SCHEMA)])  # type: ignore[arg-type]
    located = (
        scored.join(node_of.rename({"record_id": "record_a", "node": "a"}), on="record_a")
        .join(node_of.rename({"record_id": "record_b", "node": "b"}), on="record_b")
    )
    changed_located = changed_edges.join(node_of.rename({"record_id": "record_a", "node": "a"}), on="record_a")
    edges_all = pl.concat([
        located.select("a", "b", "score", "rule", "record_a", "record_b"),
        changed_located.select("a", pl.col("_node_b").alias("b"), "score", "rule", "record_a", "record_b"),
    ]).with_columns(forced=pl.col("rule").is_in(["manual_link", "previous_master"]))
    edges_all = edges_all.filter(pl.col("a") != pl.col("b"))
    accepted = edges_all.filter(
        pl.col("forced") | (pl.col("rule") == "id_number") | (pl.col("score") >= link_threshold)
    )
    # Node table and its constraints.
    touched = pl.concat([edges_all["a"], edges_all["b"], "R:" + incoming["record_id"]]).unique(maintain_order=True)
    nodes = pl.DataFrame({"node": touched}).with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    valid_rows = pl.concat([
        incoming.filter(pl.col("id_valid")).select(("R:" + pl.col("record_id")).alias("node"), "id_number"),
        others.filter(pl.col("id_valid") & pl.col("master_id").is_in(
            nodes.filter(pl.col("node").str.starts_with("M:"))["node"].str.slice(2).implode()
        )).select(("M:" + pl.col("master_id")).alias("node"), "id_number"),
    ]).join(nodes, on="node").group_by("i").agg(pl.col("id_number").unique())
    edge_ints = accepted.join(nodes.rename({"node": "a", "i": "ai"}), on="a").join(
        nodes.rename({"node": "b", "i": "bi"}), on="b"
    )
    # only nodes on an accepted edge can end up beside another valid ID: a lone node's IDs change nothing
    on_edge = pl.concat([edge_ints["ai"], edge_ints["bi"]]).unique().implode()
    valid = {int(i): frozenset(ids) for i, ids in valid_rows.filter(pl.col("i").is_in(on_edge)).iter_rows()}
    located_unlinks = (
        unlinks.join(node_of.rename({"record_id": "record_a", "node": "a"}), on="record_a")
        .join(node_of.rename({"record_id": "record_b", "node": "b"}), on="record_b")
        .filter(pl.col("a") != pl.col("b"))
    )
    apart = list(
        located_unlinks.join(nodes.rename({"node": "a", "i": "ai"}), on="a")
        .join(nodes.rename({"node": "b", "i": "bi"}), on="b")
        .select("ai", "bi").iter_rows()
    )
    labels = constrained_components(
        nodes.height, edge_ints.select(pl.col("ai").alias("a"), pl.col("bi").alias("b"), "score", "forced"),
        valid, apart,
    )
    nodes = nodes.with_columns(label=pl.Series(labels, dtype=pl.Int64))
    return _assign(batch, nodes, edges_all, link_threshold, source_priority)


def _assign(
    link: LinkBatch, nodes: pl.DataFrame, edges_all: pl.DataFrame, link_threshold: float,
    source_priority: Mapping[str, int],
) -> BatchChanges:
    """Masters of the clusters (the oldest survives a merge; a cluster without one gets a new ID), index rows,
    merge audit, review pairs and the golden records of every master touched."""
    others, incoming, golden, split_ids = link.others, link.incoming, link.golden, link.split_ids
    batch, now = link.batch_id, link.now
    masters = (
        nodes.filter(pl.col("node").str.starts_with("M:"))
        .with_columns(master_id=pl.col("node").str.slice(2))
        .join(golden.select("master_id", "created_at"), on="master_id", how="left")
        .sort("created_at", "master_id", nulls_last=True)
    )
    survivor = masters.group_by("label", maintain_order=True).agg(
        pl.col("master_id").first().alias("survivor"), pl.col("master_id").slice(1).alias("retired")
    )
    order = incoming.select("record_id").with_row_index("_order")
    records = (
        nodes.filter(pl.col("node").str.starts_with("R:"))
        .with_columns(record_id=pl.col("node").str.slice(2))
        .join(order, on="record_id")
    )
    founders = (
        records.join(survivor, on="label", how="anti").sort("_order")
        .group_by("label", maintain_order=True).agg(pl.col("record_id").first().alias("first_record_id"))
    )
    taken = set(golden["master_id"].to_list()) | set(link.used_master_ids)
    founders = founders.with_columns(
        survivor=pl.Series([master_id(r, taken) for r in founders["first_record_id"]], dtype=pl.Utf8)
    )
    label_master = pl.concat([survivor.select("label", "survivor"), founders.select("label", "survivor")])
    # Score of each incoming record: its strongest accepted edge inside its final cluster.
    node_label = nodes.select("node", "label")
    inside = (
        edges_all.join(node_label.rename({"node": "a", "label": "la"}), on="a")
        .join(node_label.rename({"node": "b", "label": "lb"}), on="b")
    )
    kept = inside.filter(
        (pl.col("la") == pl.col("lb"))
        & (pl.col("forced") | (pl.col("rule") == "id_number") | (pl.col("score") >= link_threshold))
    )
    best = (
        pl.concat([kept.select(node="a", score="score", rule="rule"), kept.select(node="b", score="score",
                                                                                     rule="rule")])
        .sort("score", descending=True).unique(subset="node", keep="first")
    )
    new_rows = (
        incoming.join(records.select("record_id", "node", "label"), on="record_id")
        .join(label_master, on="label")
        .join(best, on="node", how="left")
        .with_columns(
            master_id=pl.col("survivor"), match_score=pl.col("score"),
            match_rule=pl.col("rule").fill_null("new_master"), linked_at=pl.lit(now), batch_id=pl.lit(batch),
        )
    )
    retired_map = survivor.explode("retired").drop_nulls("retired")
    moved = others.join(retired_map.select(pl.col("retired").alias("master_id"), "survivor"), on="master_id")
    moved = moved.with_columns(master_id=pl.col("survivor"), match_rule=pl.lit("merged"))
    split_rows = others.filter(pl.col("record_id").is_in(pl.Series(split_ids, dtype=pl.Utf8).implode()))
    index_rows = pl.concat([
        new_rows.select(list(TABLES["master_patient_index"])).cast(TABLES["master_patient_index"]),
        moved.select(list(TABLES["master_patient_index"])),
        split_rows.join(moved.select("record_id"), on="record_id", how="anti")
        .select(list(TABLES["master_patient_index"])),
    ])
    # Merge audit: one row per retired master, with the strongest edge that joined it.
    lab = dict(zip(label_master["label"].to_list(), label_master["survivor"].to_list(), strict=True))
    audit_rows = []
    for label, surv, gone in retired_map.select("label", "survivor", "retired").iter_rows():
        joining = kept.filter(pl.col("la") == label).sort("score", descending=True)
        top = joining.row(0, named=True) if joining.height else {}
        audit_rows.append({
            "event_time": now, "event": "merge", "master_id": surv, "other_master_id": gone,
            "record_a": top.get("record_a"), "record_b": top.get("record_b"), "score": top.get("score"),
            "rule": top.get("rule"), "reason": f"batch {batch} linked {gone} into {lab[label]} (kept older)",
            "batch_id": batch,
        })
    audit = pl.DataFrame(audit_rows, schema=TABLES["empi_audit"])
    # Review: scored pairs below the link threshold (or blocked by a constraint) that stay apart.
    review = (
        inside.filter((pl.col("la") != pl.col("lb")) & ~pl.col("forced"))
        .join(label_master.rename({"label": "la", "survivor": "master_a"}), on="la", how="left")
        .join(label_master.rename({"label": "lb", "survivor": "master_b"}), on="lb", how="left")
        .with_columns(
            reason=pl.when(pl.col("score") >= link_threshold)
            .then(pl.lit("above link threshold but kept apart (different valid ID numbers or manual unlink)"))
            .otherwise(pl.lit("uncertain match score")),
            status=pl.lit("open"), created_at=pl.lit(now), batch_id=pl.lit(batch),
        )
        .unique(subset=["record_a", "record_b"])
    )
    affected = pl.concat([label_master["survivor"], split_rows["master_id"]]).unique()
    retired = retired_map["retired"].to_list()
    all_rows = pl.concat([
        others.filter(~pl.col("record_id").is_in(index_rows["record_id"].implode())), index_rows
    ]).filter(pl.col("master_id").is_in(affected.implode()))
    created = pl.concat([
        golden.select("master_id", "created_at", "first_record_id"),
        founders.select(pl.col("survivor").alias("master_id"), pl.lit(now).cast(pl.Datetime("us"))
                        .alias("created_at"), "first_record_id"),
    ]).unique(subset="master_id", keep="first")
    golden_new = golden_records(all_rows, source_priority).join(created, on="master_id", how="left")
    golden_new = golden_new.with_columns(updated_at=pl.lit(now))
    return BatchChanges(index_rows=index_rows, golden=golden_new, retired=retired, audit=audit, review=review)
