"""Measure the EMPI on labelled data it was not built from: pairwise quality, clusters, blocking recall.

``medlake empi evaluate FILE --truth COLUMN --map …`` links FILE through the public index (the same path as
``medlake empi link``) in a scratch store and compares the master IDs with the truth column:

* pairwise precision / recall / F1 over record pairs placed in one cluster;
* cluster counts (predicted masters, true persons);
* blocking recall: the share of true pairs that at least one blocking rule proposes (an upper bound of recall);
* optionally the link threshold chosen on a labelled validation split (half of the persons, by a hash of the
  truth value): the index links that half once at the highest candidate, and each lower candidate clusters its
  master IDs plus the review-queue pairs scored at or above it (valid ID numbers kept apart, as the index does);
  the chosen threshold then links the other half, which is scored;
* beside it, plain Splink with its default comparisons on simply normalised input (:mod:`medlake.empi.baseline`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from medlake.empi.comparisons import BLOCKING_KEYS, with_blocking_columns
from medlake.empi.errors import EmpiError
from medlake.empi.features import standardize_records
from medlake.empi.field_map import FieldMap

if TYPE_CHECKING:
    from medlake.engine.base import Engine

__all__ = ["Evaluation", "blocking_recall", "evaluate", "pair_quality", "truth_frame"]

_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


@dataclass(frozen=True)
class Evaluation:
    """Pairwise quality of one assignment of records to clusters against the truth."""

    records: int
    true_clusters: int
    predicted_clusters: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pair_count(frame: pl.DataFrame, *by: str) -> int:
    sizes = frame.group_by(*by).len()["len"].cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def pair_quality(assignments: pl.DataFrame, truth: pl.DataFrame) -> Evaluation:
    """``assignments`` (record_id, master_id) against ``truth`` (record_id, person_id), on the records in both."""
    joined = assignments.select("record_id", "master_id").join(truth.select("record_id", "person_id"), on="record_id")
    if joined.height == 0:
        raise EmpiError("evaluation: no record id of the assignments is in the truth")
    correct = _pair_count(joined, "master_id", "person_id")
    predicted, actual = _pair_count(joined, "master_id"), _pair_count(joined, "person_id")
    precision = correct / predicted if predicted else 1.0
    recall = correct / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Evaluation(
        records=joined.height, true_clusters=joined["person_id"].n_unique(),
        predicted_clusters=joined["master_id"].n_unique(), true_pairs=actual, predicted_pairs=predicted,
        correct_pairs=correct, precision=round(precision, 5), recall=round(recall, 5), f1=round(f1, 5),
    )


def truth_frame(records: pl.DataFrame, field_map: FieldMap, truth_column: str) -> pl.DataFrame:
    """``record_id, person_id`` with the record ids the index gives (the mapped column, else the row number)."""
    if truth_column not in records.columns:
        raise EmpiError(f"truth column {truth_column!r} not in the input; columns are {', '.join(records.columns)}")
    record_id = (
        pl.col(field_map.record_id).cast(pl.Utf8).str.strip_chars()
        if field_map.record_id else pl.int_range(1, pl.len() + 1).cast(pl.Utf8)
    )
    truth = records.select(record_id.alias("record_id"), pl.col(truth_column).cast(pl.Utf8).alias("person_id"))
    missing = truth.filter(pl.col("person_id").is_null() | (pl.col("person_id").str.strip_chars() == ""))
    if missing.height:
        raise EmpiError(f"truth column {truth_column!r}: empty for record {missing['record_id'][0]} "
                        f"({missing.height} records)")
    return truth


def _true_pairs(truth: pl.DataFrame) -> pl.DataFrame:
    left = truth.rename({"record_id": "record_a"})
    right = truth.rename({"record_id": "record_b"})
    return left.join(right, on="person_id").filter(pl.col("record_a") < pl.col("record_b")).drop("person_id")


def blocking_recall(features: pl.DataFrame, truth: pl.DataFrame) -> float:
    """Share of true pairs whose records agree (non-null, equal) on every column of at least one blocking key."""
    pairs = _true_pairs(truth)
    if pairs.height == 0:
        return 1.0
    features = with_blocking_columns(features)
    columns = sorted({c for key in BLOCKING_KEYS for c in key if c in features.columns})
    side = features.select("record_id", *columns)
    joined = pairs.join(side.rename({c: f"{c}_a" for c in side.columns}), left_on="record_a",
                        right_on="record_id_a").join(
        side.rename({c: f"{c}_b" for c in side.columns}), left_on="record_b", right_on="record_id_b"
    )
    proposed = pl.any_horizontal([
        pl.all_horizontal([(pl.col(f"{c}_a") == pl.col(f"{c}_b")).fill_null(False) for c in key])
        for key in BLOCKING_KEYS if set(key) <= set(columns)
    ])
    return round(joined.select(proposed.sum()).item() / pairs.height, 5)


def _validation_half(truth: pl.DataFrame, seed: int) -> pl.Series:
    return (truth["person_id"].hash(seed=seed) % 2 == 0).alias("validation")


def _components(assignments: pl.DataFrame, extra: pl.DataFrame, valid_ids: pl.DataFrame) -> pl.DataFrame:
    """Masters of ``assignments`` joined further by the ``extra`` scored pairs (record_a, record_b, score), with
    the index's constraint: a cluster never holds two different valid ID numbers (``valid_ids``: record_id,
    id_number), the strongest pairs joining first."""
    from medlake.empi.clusters import constrained_components

    nodes = assignments.select("record_id").with_row_index("i").with_columns(pl.col("i").cast(pl.Int64))
    first = assignments.with_columns(first=pl.col("record_id").first().over("master_id"))
    edges = pl.concat([
        first.select(pl.col("first").alias("record_a"), pl.col("record_id").alias("record_b"), score=pl.lit(1.0),
                     forced=pl.lit(True)),
        extra.select("record_a", "record_b", pl.col("score").cast(pl.Float64), forced=pl.lit(False)),
    ]).join(nodes.rename({"record_id": "record_a", "i": "a"}), on="record_a").join(
        nodes.rename({"record_id": "record_b", "i": "b"}), on="record_b"
    ).select("a", "b", "score", "forced")
    valid = {int(i): frozenset([n]) for i, n in nodes.join(valid_ids, on="record_id").select("i", "id_number")
             .iter_rows()}
    labels = constrained_components(nodes.height, edges, valid)
    return nodes.select("record_id", master_id=pl.Series(labels).cast(pl.Utf8))


def _choose_threshold(
    records: pl.DataFrame, field_map: FieldMap, truth: pl.DataFrame, review_threshold: float
) -> tuple[float, dict[str, float]]:
    """The link threshold with the best F1 on ``records`` (the validation half), from one link at the highest
    candidate: lower thresholds add the review-queue pairs scored at or above them."""
    from medlake.empi.index import MasterPatientIndex

    with tempfile.TemporaryDirectory(prefix="medlake-empi-validate-") as scratch:
        mpi = MasterPatientIndex(Path(scratch), link_threshold=max(_THRESHOLDS), review_threshold=review_threshold)
        assignments = mpi.link(records, field_map).assignments
        review = mpi.store.read("empi_review").filter(pl.col("reason") == "uncertain match score")
    features = standardize_records(records, field_map)
    valid_ids = features.filter(pl.col("id_valid")).select("record_id", "id_number")
    scores = {}
    for threshold in _THRESHOLDS:
        if threshold < review_threshold:
            continue
        clusters = _components(assignments, review.filter(pl.col("score") >= threshold), valid_ids)
        scores[str(threshold)] = pair_quality(clusters, truth).f1
    best = max(scores.items(), key=lambda item: (item[1], float(item[0])))
    return float(best[0]), scores


def _link(records: pl.DataFrame, field_map: FieldMap, link_threshold: float, review_threshold: float) -> tuple[
    pl.DataFrame, int, float
]:
    from medlake.empi.index import MasterPatientIndex

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medlake-empi-evaluate-") as scratch:
        mpi = MasterPatientIndex(Path(scratch), link_threshold=link_threshold, review_threshold=review_threshold)
        result = mpi.link(records, field_map)
    return result.assignments, result.review_pairs, round(time.perf_counter() - started, 2)


def evaluate(
    records: pl.DataFrame,
    field_map: FieldMap,
    truth_column: str,
    *,
    link_threshold: float = 0.95,
    review_threshold: float = 0.5,
    choose_threshold: bool = False,
    baseline: bool = True,
    seed: int = 2260,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Figures for one labelled file: ``medlake`` (the index), ``blocking_recall``, and when asked
    ``validation`` (threshold chosen on one half, quality on the other) and ``baseline`` (plain Splink on ``engine``,
    default the embedded one)."""
    field_map.check_columns(records.columns)
    truth = truth_frame(records, field_map, truth_column)
    assignments, review_pairs, seconds = _link(records, field_map, link_threshold, review_threshold)
    report: dict[str, Any] = {
        "records": records.height,
        "link_threshold": link_threshold,
        "medlake": {**pair_quality(assignments, truth).as_dict(), "review_pairs": review_pairs, "seconds": seconds},
        "blocking_recall": blocking_recall(standardize_records(records, field_map), truth),
    }
    if choose_threshold:
        half = _validation_half(truth, seed)
        chosen, scores = _choose_threshold(records.filter(half), field_map, truth.filter(half),
                                           min(review_threshold, 0.05))
        test_assignments, _, _ = _link(records.filter(~half), field_map, chosen, review_threshold)
        report["validation"] = {
            "validation_records": int(half.sum()), "f1_by_threshold": scores, "chosen_threshold": chosen,
            "test": pair_quality(test_assignments, truth.filter(~half)).as_dict(),
        }
    if baseline:
        from medlake.empi.baseline import baseline_assignments
        from medlake.engine.polars_engine import PolarsEngine  # the index's default engine (EmpiStore's)

        engine = engine or PolarsEngine()
        started = time.perf_counter()
        plain = pair_quality(baseline_assignments(records, field_map, engine, link_threshold), truth).as_dict()
        report["baseline"] = {**plain, "seconds": round(time.perf_counter() - started, 2)}
        report["f1_ratio"] = round(report["medlake"]["f1"] / plain["f1"], 4) if plain["f1"] else None
    return report
