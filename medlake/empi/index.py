"""The master patient index: incremental linkage of patient records to stable master IDs, kept in Delta.

A run links only what is new or changed: incoming records are scored against existing records (Splink
``predict_between``) and among themselves (``predict_within``) with the saved model; existing masters are
graph nodes, so linking never renumbers them. A cluster joining several masters keeps the oldest and audits a
merge; a manual unlink inside a master re-clusters that master alone and audits a split. Manual decisions
win over the model and persist; pairs between the review and link thresholds go to ``empi_review``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from medlake.config import LakePath, is_remote
from medlake.empi.clusters import constrained_components
from medlake.empi.errors import EmpiError, ManualDecisionError
from medlake.empi.features import FEATURE_SCHEMA, standardize_records
from medlake.empi.field_map import FieldMap
from medlake.empi.golden import golden_records
from medlake.empi.model import PAIR_SCHEMA, LinkageModel, ModelSettings, blocking_candidates
from medlake.empi.rules import apart_by_household_rule
from medlake.empi.store import TABLES, EmpiStore, utc_now
from medlake.lake.crashpoints import crash_point

if TYPE_CHECKING:
    from medlake.config import Settings

__all__ = ["LinkResult", "MasterPatientIndex"]

Decision = Literal["link", "unlink"]
_BATCH_TABLES = ("golden_record", "empi_audit", "empi_review", "master_patient_index")  # what one batch writes
_EDGE_SCHEMA = {"a": pl.Utf8, "b": pl.Utf8, "score": pl.Float64, "rule": pl.Utf8, "forced": pl.Boolean}


@dataclass
class LinkResult:
    """What one run did (for asset metadata) and the batch's assignments."""

    batch_id: str
    records_in: int = 0
    records_new: int = 0
    records_changed: int = 0
    records_unchanged: int = 0
    masters: int = 0
    new_masters: int = 0
    merges: int = 0
    splits: int = 0
    review_pairs: int = 0
    seconds: float = 0.0
    trained: bool = False
    assignments: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"record_id": pl.Utf8, "master_id": pl.Utf8, "score": pl.Float64}
    ))

    def metadata(self) -> dict[str, float | int | str]:
        """Counts for Dagster metadata (no frames)."""
        return {
            k: v for k, v in self.__dict__.items() if isinstance(v, int | float | str) and not isinstance(v, bool)
        }


def _master_id(record_id: str, taken: set[str]) -> str:
    """Deterministic: derived from the founding record; salted only if that ID was ever used."""
    for salt in range(1000):
        text = record_id if salt == 0 else f"{record_id}#{salt}"
        candidate = "MP" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest().upper()
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise EmpiError(f"record {record_id}: no free master ID after 1000 salts")


def _pair_key(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.min_horizontal(a, b), pl.max_horizontal(a, b)], separator="\x1f")


def _id_pairs(left: pl.DataFrame, right: pl.DataFrame | None) -> pl.DataFrame:
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


class MasterPatientIndex:
    """Incremental EMPI whose state lives in Delta tables under ``store_dir``.

    ``engine`` picks the Splink backend (``medlake.empi.model.BACKENDS``: ``polars`` → DuckDB in process,
    ``spark`` → the SparkSession of ``engine_settings``); the state and the saved model are the same for both, so
    an index built on one engine continues incrementally on the other.
    """

    def __init__(
        self,
        store_dir: LakePath | str,
        *,
        link_threshold: float = 0.95,
        review_threshold: float = 0.5,
        source_priority: Mapping[str, int] | None = None,
        model_settings: ModelSettings | None = None,
        engine: str = "polars",
        engine_settings: Settings | None = None,
    ) -> None:
        if not 0.0 < review_threshold <= link_threshold <= 1.0:
            raise EmpiError(
                f"thresholds: need 0 < review_threshold ({review_threshold}) <= link_threshold ({link_threshold}) <= 1"
            )
        self.store = EmpiStore(store_dir)
        self.link_threshold = link_threshold
        self.source_priority = dict(source_priority or {})
        base = model_settings or ModelSettings()
        self.model_settings = ModelSettings(**{**base.__dict__, "review_threshold": review_threshold})
        self.engine = engine
        self.engine_settings = engine_settings

    # ------------------------------------------------------------------ public API

    def link(
        self, records: pl.DataFrame, field_map: FieldMap, *, batch_id: str | None = None, retrain: bool = False
    ) -> LinkResult:
        """Link ``records`` (mapped by ``field_map``) into the index; incremental against the stored state."""
        return self._run(standardize_records(records, field_map), batch_id, retrain)

    def apply_manual_decisions(self, batch_id: str | None = None) -> LinkResult:
        """Apply stored manual decisions to the index without new records (splits and merges)."""
        return self._run(pl.DataFrame(schema=FEATURE_SCHEMA), batch_id, retrain=False)

    def record_manual_decision(
        self, record_a: str, record_b: str, decision: Decision, who: str, why: str = "", *, apply: bool = True
    ) -> LinkResult | None:
        """Persist a manual link/unlink (it wins over the model on every later run); apply it now by default."""
        if decision not in ("link", "unlink"):
            raise ManualDecisionError(f"decision {decision!r} for {record_a}/{record_b}: expected link or unlink")
        if not record_a or not record_b or record_a == record_b:
            raise ManualDecisionError(
                f"decision {decision}: two different record ids needed, got {record_a!r}/{record_b!r}"
            )
        if not who:
            raise ManualDecisionError(f"decision {decision} {record_a}/{record_b}: 'who' is required")
        now = utc_now()
        row = {"record_a": record_a, "record_b": record_b, "decision": decision, "who": who, "why": why,
               "decided_at": now}
        self.store.append("empi_manual_decisions", pl.DataFrame([row], schema=TABLES["empi_manual_decisions"]))
        self.store.append("empi_audit", pl.DataFrame([{
            "event_time": now, "event": f"manual_{decision}", "master_id": None, "other_master_id": None,
            "record_a": record_a, "record_b": record_b, "score": None, "rule": f"manual_{decision}",
            "reason": f"{who}: {why}", "batch_id": None,
        }], schema=TABLES["empi_audit"]))
        return self.apply_manual_decisions() if apply else None

    def assignments(self) -> pl.DataFrame:
        """``record_id, master_id, score`` for every record in the index."""
        return self.store.read("master_patient_index").select(
            "record_id", "master_id", pl.col("match_score").alias("score")
        )

    # ------------------------------------------------------------------ one run

    def _decisions(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Latest decision per unordered pair → (links, unlinks), each with record_a, record_b, why."""
        decisions = self.store.read("empi_manual_decisions")
        latest = (
            decisions.with_columns(_pair=_pair_key(pl.col("record_a"), pl.col("record_b")))
            .sort("decided_at")
            .unique(subset="_pair", keep="last", maintain_order=True)
        )
        cols = ["record_a", "record_b", "why", "who"]
        return latest.filter(pl.col("decision") == "link").select(cols), latest.filter(
            pl.col("decision") == "unlink"
        ).select(cols)

    def _model(self, training: pl.DataFrame, retrain: bool) -> tuple[LinkageModel, bool]:
        model = LinkageModel(self.model_settings, backend=self.engine, engine_settings=self.engine_settings)
        path = self.store.model_path
        if retrain or not path.exists():
            if training.height < 2:
                model.close()
                raise EmpiError(f"{path}: cannot train the EMPI model on {training.height} record(s)")
            model.train(training)
            if not is_remote(self.store.root):  # an object store has no folders to create
                self.store.root.mkdir(parents=True, exist_ok=True)
            model.save(path)
            return model, True
        model.load(path, training.head(1) if training.height else training)
        return model, False

    def _run(self, features: pl.DataFrame, batch_id: str | None, retrain: bool) -> LinkResult:
        started = time.perf_counter()
        now = utc_now()
        batch = batch_id or now.strftime("%Y%m%dT%H%M%S%f")
        result = LinkResult(batch_id=batch, records_in=features.height)
        features = features.unique(subset="record_id", keep="last", maintain_order=True)
        self.store.undo_unfinished_batch()
        index = self.store.read("master_patient_index")
        golden = self.store.read("golden_record").select("master_id", "created_at", "first_record_id")
        known = index.select("record_id", "fingerprint", "master_id", "match_score")
        status = features.join(known, on="record_id", how="left", suffix="_old")
        unchanged = status.filter(pl.col("fingerprint") == pl.col("fingerprint_old"))
        incoming = status.filter(
            pl.col("fingerprint_old").is_null() | (pl.col("fingerprint") != pl.col("fingerprint_old"))
        )
        changed = incoming.filter(pl.col("master_id").is_not_null())
        result.records_unchanged = unchanged.height
        result.records_changed = changed.height
        result.records_new = incoming.height - changed.height
        incoming = incoming.select(list(FEATURE_SCHEMA))
        links, unlinks = self._decisions()
        if incoming.height == 0 and (index.height == 0 or (links.height == 0 and unlinks.height == 0)):
            return self._finish(result, features, index, started)
        training = pl.concat([index.select(list(FEATURE_SCHEMA)), incoming]) if retrain else incoming
        seed = incoming if incoming.height else index.select(list(FEATURE_SCHEMA)).head(2)
        model, result.trained = self._model(training if retrain or index.height == 0 else seed, retrain)
        try:
            others = index.filter(~pl.col("record_id").is_in(incoming["record_id"].implode()))
            others, golden, split_audit, split_ids = self._split(others, golden, unlinks, model, batch, now)
            pairs = pl.concat([
                model.score_between(blocking_candidates(others.select(list(FEATURE_SCHEMA)), incoming), incoming),
                model.score_within(incoming) if incoming.height > 1 else pl.DataFrame(schema=PAIR_SCHEMA),
                _id_pairs(others, incoming),
                _id_pairs(incoming, None),
            ])
            pairs = apart_by_household_rule(pairs, pl.concat([others.select(list(FEATURE_SCHEMA)), incoming]))
        finally:
            model.close()
        index_rows, golden_new, retired, audit, review = self._cluster(
            others, incoming, changed, golden, pairs, links, unlinks, split_ids, batch, now
        )
        audit = pl.concat([split_audit, audit])
        result.splits = split_audit.filter(pl.col("event") == "split").height
        result.merges = audit.filter(pl.col("event") == "merge").height
        result.new_masters = golden_new.filter(pl.col("created_at") == now).height - result.splits
        result.review_pairs = review.height
        self._write(index, index_rows, golden_new, retired, audit, review, golden["master_id"], batch)
        merged = pl.concat([index.filter(~pl.col("record_id").is_in(index_rows["record_id"].implode())), index_rows])
        return self._finish(result, features, merged, started)

    def _finish(
        self, result: LinkResult, features: pl.DataFrame, index: pl.DataFrame, started: float
    ) -> LinkResult:
        result.masters = index["master_id"].n_unique() if index.height else 0
        result.assignments = (
            features.select("record_id")
            .join(index.select("record_id", "master_id", pl.col("match_score").alias("score")), on="record_id",
                  how="left")
        )
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    # ------------------------------------------------------------------ splits by manual unlink

    def _split(
        self,
        others: pl.DataFrame,
        golden: pl.DataFrame,
        unlinks: pl.DataFrame,
        model: LinkageModel,
        batch: str,
        now: object,
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[str]]:
        """Re-cluster each master that holds both records of a manual unlink; the founder's part keeps the ID."""
        audit = pl.DataFrame(schema=TABLES["empi_audit"])
        if unlinks.height == 0 or others.height == 0:
            return others, golden, audit, []
        where = others.select("record_id", "master_id")
        violated = (
            unlinks.join(where.rename({"record_id": "record_a", "master_id": "m_a"}), on="record_a")
            .join(where.rename({"record_id": "record_b", "master_id": "m_b"}), on="record_b")
            .filter(pl.col("m_a") == pl.col("m_b"))
        )
        if violated.height == 0:
            return others, golden, audit, []
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
                _id_pairs(members, None),
            ])
            pairs = pairs.filter(pl.col("score") >= self.link_threshold)
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
                master_of[label] = _master_id(first, taken)
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
        return others, golden, audit, updated["record_id"].to_list()

    # ------------------------------------------------------------------ clustering a batch

    def _cluster(
        self,
        others: pl.DataFrame,
        incoming: pl.DataFrame,
        changed: pl.DataFrame,
        golden: pl.DataFrame,
        pairs: pl.DataFrame,
        links: pl.DataFrame,
        unlinks: pl.DataFrame,
        split_ids: list[str],
        batch: str,
        now: object,
    ) -> tuple[pl.DataFrame, pl.DataFrame, list[str], pl.DataFrame, pl.DataFrame]:
        # Node of a record: incoming records are their own node, existing records stand for their master.
        involved = pl.concat([frame[c] for frame in (pairs, links, unlinks) for c in ("record_a", "record_b")])
        node_of = pl.concat([
            incoming.select("record_id", ("R:" + pl.col("record_id")).alias("node")),
            others.filter(pl.col("record_id").is_in(involved.unique().implode()))
            .select("record_id", ("M:" + pl.col("master_id")).alias("node")),
        ])
        unlink_keys = unlinks.select(_pair_key(pl.col("record_a"), pl.col("record_b")).alias("_pair"))
        pairs = pairs.with_columns(_pair=_pair_key(pl.col("record_a"), pl.col("record_b"))).join(
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
            pl.col("forced") | (pl.col("rule") == "id_number") | (pl.col("score") >= self.link_threshold)
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
        return self._assign(others, incoming, golden, nodes, edges_all, split_ids, batch, now)

    def _assign(
        self,
        others: pl.DataFrame,
        incoming: pl.DataFrame,
        golden: pl.DataFrame,
        nodes: pl.DataFrame,
        edges_all: pl.DataFrame,
        split_ids: list[str],
        batch: str,
        now: object,
    ) -> tuple[pl.DataFrame, pl.DataFrame, list[str], pl.DataFrame, pl.DataFrame]:
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
        taken = set(golden["master_id"].to_list()) | set(
            self.store.read("empi_audit")["other_master_id"].drop_nulls().to_list()
        )
        founders = founders.with_columns(
            survivor=pl.Series([_master_id(r, taken) for r in founders["first_record_id"]], dtype=pl.Utf8)
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
            & (pl.col("forced") | (pl.col("rule") == "id_number") | (pl.col("score") >= self.link_threshold))
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
                reason=pl.when(pl.col("score") >= self.link_threshold)
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
        golden_new = golden_records(all_rows, self.source_priority).join(created, on="master_id", how="left")
        golden_new = golden_new.with_columns(updated_at=pl.lit(now))
        return index_rows, golden_new, retired, audit, review

    # ------------------------------------------------------------------ writes

    def _write(
        self,
        index: pl.DataFrame,
        index_rows: pl.DataFrame,
        golden_new: pl.DataFrame,
        retired: list[str],
        audit: pl.DataFrame,
        review: pl.DataFrame,
        known_masters: pl.Series,
        batch: str,
    ) -> None:
        self.store.begin_batch(batch, _BATCH_TABLES)  # a crash before finish_batch is undone by the next run
        stored = golden_new["master_id"].is_in(known_masters.implode())
        self.store.append("golden_record", golden_new.filter(~stored), batch)  # new masters: no MERGE needed
        crash_point("empi.golden.after_append")
        self.store.upsert_and_delete("golden_record", golden_new.filter(stored), "master_id", retired, batch)
        crash_point("empi.golden.after_merge")
        self.store.append("empi_audit", audit, batch)
        crash_point("empi.audit.after_append")
        open_review = self.store.read("empi_review").select("record_a", "record_b")
        self.store.append(
            "empi_review", review.join(open_review, on=["record_a", "record_b"], how="anti"), batch
        )
        crash_point("empi.review.after_append")
        existing = index_rows["record_id"].is_in(index["record_id"].implode())
        self.store.append("master_patient_index", index_rows.filter(~existing), batch)
        crash_point("empi.index.after_append")
        self.store.upsert("master_patient_index", index_rows.filter(existing), "record_id", batch)
        crash_point("empi.index.after_merge")
        self.store.finish_batch()
