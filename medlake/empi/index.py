"""The master patient index: incremental linkage of patient records to stable master IDs, kept in Delta.

A run links only what is new or changed: incoming records are scored against existing records (Splink
``predict_between``) and among themselves (``predict_within``) with the saved model; existing masters are
graph nodes, so linking never renumbers them. A cluster joining several masters keeps the oldest and audits a
merge; a manual unlink inside a master re-clusters that master alone and audits a split. Manual decisions
win over the model and persist; pairs between the review and link thresholds go to ``empi_review``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import polars as pl

from medlake.config import LakePath, is_remote
from medlake.empi.batch import BatchChanges, LinkBatch, id_pairs, pair_key
from medlake.empi.clustering import cluster_batch
from medlake.empi.comparisons import blocking_candidates
from medlake.empi.errors import EmpiError, ManualDecisionError
from medlake.empi.features import FEATURE_SCHEMA, standardize_records
from medlake.empi.field_map import FieldMap
from medlake.empi.model import PAIR_SCHEMA, LinkageModel, ModelSettings
from medlake.empi.rules import apart_by_household_rule
from medlake.empi.splits import split_masters
from medlake.empi.store import TABLES, EmpiStore, utc_now
from medlake.lake.crashpoints import crash_point

if TYPE_CHECKING:
    from medlake.engine.base import Engine

__all__ = ["LinkResult", "MasterPatientIndex"]

Decision = Literal["link", "unlink"]
_BATCH_TABLES = ("golden_record", "empi_audit", "empi_review", "master_patient_index")  # what one batch writes


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


class MasterPatientIndex:
    """Incremental EMPI whose state lives in Delta tables under ``store_dir``.

    ``engine`` (default: the embedded engine) gives the Splink backend (DuckDB in process, or the Spark engine's
    session) and the state tables; the state and the saved model are the same for every engine, so an index built
    on one engine continues incrementally on the other.
    """

    def __init__(
        self,
        store_dir: LakePath | str,
        *,
        link_threshold: float = 0.95,
        review_threshold: float = 0.5,
        source_priority: Mapping[str, int] | None = None,
        model_settings: ModelSettings | None = None,
        engine: Engine | None = None,
    ) -> None:
        if not 0.0 < review_threshold <= link_threshold <= 1.0:
            raise EmpiError(
                f"thresholds: need 0 < review_threshold ({review_threshold}) <= link_threshold ({link_threshold}) <= 1"
            )
        self.store = EmpiStore(store_dir, engine)
        self.link_threshold = link_threshold
        self.source_priority = dict(source_priority or {})
        base = model_settings or ModelSettings()
        self.model_settings = ModelSettings(**{**base.__dict__, "review_threshold": review_threshold})
        self.engine = self.store.engine

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
            decisions.with_columns(_pair=pair_key(pl.col("record_a"), pl.col("record_b")))
            .sort("decided_at")
            .unique(subset="_pair", keep="last", maintain_order=True)
        )
        cols = ["record_a", "record_b", "why", "who"]
        return latest.filter(pl.col("decision") == "link").select(cols), latest.filter(
            pl.col("decision") == "unlink"
        ).select(cols)

    def _model(self, training: pl.DataFrame, retrain: bool) -> tuple[LinkageModel, bool]:
        model = LinkageModel(self.model_settings, self.engine)
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
            splits = split_masters(others, golden, unlinks, model, self.link_threshold, batch, now)
            others, golden = splits.others, splits.golden
            pairs = pl.concat([
                model.score_between(blocking_candidates(others.select(list(FEATURE_SCHEMA)), incoming), incoming),
                model.score_within(incoming) if incoming.height > 1 else pl.DataFrame(schema=PAIR_SCHEMA),
                id_pairs(others, incoming),
                id_pairs(incoming, None),
            ])
            pairs = apart_by_household_rule(pairs, pl.concat([others.select(list(FEATURE_SCHEMA)), incoming]))
        finally:
            model.close()
        link = LinkBatch(
            batch_id=batch, now=now, others=others, incoming=incoming, changed=changed, golden=golden, pairs=pairs,
            links=links, unlinks=unlinks, split_ids=splits.record_ids,
            used_master_ids=frozenset(self.store.read("empi_audit")["other_master_id"].drop_nulls().to_list()),
        )
        changes = cluster_batch(link, self.link_threshold, self.source_priority)
        audit = pl.concat([splits.audit, changes.audit])
        result.splits = splits.audit.filter(pl.col("event") == "split").height
        result.merges = audit.filter(pl.col("event") == "merge").height
        result.new_masters = changes.golden.filter(pl.col("created_at") == now).height - result.splits
        result.review_pairs = changes.review.height
        self._write(index, replace(changes, audit=audit), golden["master_id"], batch)
        index_rows = changes.index_rows
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

    # ------------------------------------------------------------------ writes

    def _write(self, index: pl.DataFrame, changes: BatchChanges, known_masters: pl.Series, batch: str) -> None:
        """Write a batch's changes, journalled (a crash before the end is undone by the next run)."""
        index_rows, golden_new, review = changes.index_rows, changes.golden, changes.review
        self.store.begin_batch(batch, _BATCH_TABLES)  # a crash before finish_batch is undone by the next run
        stored = golden_new["master_id"].is_in(known_masters.implode())
        self.store.append("golden_record", golden_new.filter(~stored), batch)  # new masters: no MERGE needed
        crash_point("empi.golden.after_append")
        self.store.upsert_and_delete("golden_record", golden_new.filter(stored), "master_id", changes.retired, batch)
        crash_point("empi.golden.after_merge")
        self.store.append("empi_audit", changes.audit, batch)
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
