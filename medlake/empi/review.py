"""The clerk's side of the EMPI: the review queue as a table, and link/unlink decisions in bulk.

:func:`review_queue` lists the open review pairs (scored between the review and link thresholds, or kept apart by
a constraint) with both records side by side and the model's evidence per comparison: the level that applied
and its match weight, log2 of the Bayes factor
(``name: pinyin keys agree (+8.41); birth_date: Exact match on birth_date (+11.2); phone: All other comparisons
(-2.93)``).
The table it writes has empty ``decision`` and ``why`` columns; filled in, it is the input of
:func:`decide_from_file` (``medlake empi decide FILE.csv --who NAME``), which validates every row first (naming the
file, row and field of what is wrong), records all decisions and their audit rows with who/when/why in one
append each, and applies them once.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import polars as pl

from medlake.empi.errors import EmpiError, ManualDecisionError
from medlake.empi.index import LinkResult, MasterPatientIndex
from medlake.empi.store import TABLES, utc_now

__all__ = ["REVIEW_FIELDS", "decide_from_file", "review_queue"]

REVIEW_FIELDS = ("name", "id_number", "birth_date", "sex", "phone", "address", "region", "source")
_DECISIONS = ("link", "unlink")


def _level_weights(settings: dict[str, Any]) -> dict[str, list[tuple[float, str]]]:
    """(match weight, label) of each trained level per comparison: Splink reports a pair's weight per comparison
    (``mw_<name>``), and the level that applied is the one with that weight, log2(m/u)."""
    found: dict[str, list[tuple[float, str]]] = {}
    for comparison in settings["comparisons"]:
        levels = []
        for level in comparison["comparison_levels"]:
            m, u = level.get("m_probability"), level.get("u_probability")
            if level.get("is_null_level"):
                levels.append((0.0, "null"))
            elif m and u:
                levels.append((math.log2(m / u), str(level.get("label_for_charts", ""))))
        found[comparison["output_column_name"]] = levels
    return found


def _level(levels: list[tuple[float, str]], weight: float | None) -> str:
    if weight is None or not levels:
        return "?"
    nearest = min(levels, key=lambda level: abs(level[0] - weight))
    return f"{nearest[1]} ({weight:+.2f})"


def _evidence(mpi: MasterPatientIndex, pairs: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """record_a, record_b, match_weight, evidence: the saved model re-scores each pair with its per-comparison
    levels and Bayes factors kept, on the index's engine (the queue is small)."""
    from splink import Linker, block_on

    from medlake.empi.comparisons import ported_settings, with_blocking_columns
    from medlake.empi.features import FEATURE_SCHEMA
    from medlake.engine.base import SplinkOptions

    path = mpi.store.model_path
    if not path.exists():
        raise EmpiError(f"{path}: no trained EMPI model; run a full link first")
    settings = json.loads(path.read_text(encoding="utf-8"))
    backend = mpi.engine.splink(SplinkOptions())
    if settings.get("sql_dialect") != backend.dialect:
        settings = ported_settings(settings, backend.dialect)
    settings.update(retain_intermediate_calculation_columns=True, retain_matching_columns=False,
                    blocking_rules_to_generate_predictions=[])
    features = index.select(list(FEATURE_SCHEMA)).drop("fingerprint")
    numbered = pairs.with_row_index("_pair").with_columns(pl.col("_pair").cast(pl.Utf8))
    sides = pl.concat([
        numbered.select("_pair", pl.col(end).alias("_record"), pl.lit(end).alias("_end"))
        for end in ("record_a", "record_b")
    ]).join(features, left_on="_record", right_on="record_id").with_columns(
        record_id=pl.col("_pair") + ":" + pl.col("_end")
    )
    try:
        table = backend.db_api.register(with_blocking_columns(sides.drop("_record", "_end")).to_arrow(),
                                        table_name="review_sides")
        linker = Linker(table, settings, log_level=logging.WARNING)
        predicted = linker.inference.predict_within(
            table, blocking_rules_to_generate_predictions=[block_on("_pair")], warning_mode="never"
        )
        wanted = ["record_id_l", "match_weight", *(f"mw_{name}" for name in _level_weights(settings))]
        scored = pl.DataFrame(pl.from_arrow(backend.to_arrow(predicted, wanted)))
    finally:
        backend.close()
    weights = _level_weights(settings)
    lines = [
        {
            "_pair": str(row["record_id_l"]).split(":")[0], "match_weight": row["match_weight"],
            "evidence": "; ".join(f"{name}: {_level(levels, row.get(f'mw_{name}'))}"
                                  for name, levels in weights.items()),
        }
        for row in scored.iter_rows(named=True)
    ]
    found = pl.DataFrame(lines, schema={"_pair": pl.Utf8, "match_weight": pl.Float64, "evidence": pl.Utf8})
    return numbered.join(found, on="_pair", how="left").select("record_a", "record_b", "match_weight", "evidence")


def review_queue(mpi: MasterPatientIndex, *, evidence: bool = True) -> pl.DataFrame:
    """Open review pairs, strongest first: the pair, score, reason, both records' fields side by side
    (``name_a``/``name_b`` …), the model's evidence, and empty ``decision`` and ``why`` columns."""
    review = mpi.store.read("empi_review").filter(pl.col("status") == "open")
    decided = mpi.store.read("empi_manual_decisions").select("record_a", "record_b")
    review = review.join(decided, on=["record_a", "record_b"], how="anti").join(
        decided.select(record_a="record_b", record_b="record_a"), on=["record_a", "record_b"], how="anti"
    )
    review = review.unique(["record_a", "record_b"], keep="last").sort("score", "record_a", descending=[True, False])
    index = mpi.store.read("master_patient_index")
    fields = index.select("record_id", *REVIEW_FIELDS)
    queue = review.select("record_a", "record_b", "master_a", "master_b", "score", "reason").join(
        fields.rename({f: f"{f}_a" for f in REVIEW_FIELDS}), left_on="record_a", right_on="record_id", how="left"
    ).join(fields.rename({f: f"{f}_b" for f in REVIEW_FIELDS}), left_on="record_b", right_on="record_id", how="left")
    side_by_side = [f"{f}_{end}" for f in REVIEW_FIELDS for end in ("a", "b")]
    queue = queue.select("record_a", "record_b", "master_a", "master_b", "score", "reason", *side_by_side)
    if evidence and queue.height:
        queue = queue.join(_evidence(mpi, queue.select("record_a", "record_b"), index), on=["record_a", "record_b"],
                           how="left")
    else:
        queue = queue.with_columns(match_weight=pl.lit(None, pl.Float64), evidence=pl.lit(None, pl.Utf8))
    return queue.with_columns(decision=pl.lit("", pl.Utf8), why=pl.lit("", pl.Utf8))


def _decisions_table(path: Path, who: str | None) -> pl.DataFrame:
    from medlake.table_files import read_table_file

    frame = read_table_file(path)
    missing = [c for c in ("record_a", "record_b", "decision") if c not in frame.columns]
    if missing:
        raise ManualDecisionError(f"{path}: missing column(s) {', '.join(missing)}; columns are "
                                  f"{', '.join(frame.columns)}")
    columns = [pl.col(c).cast(pl.Utf8).str.strip_chars() for c in ("record_a", "record_b")]
    rows = frame.with_row_index("_row", offset=2).select(  # row 1 is the header
        "_row", *columns,
        pl.col("decision").cast(pl.Utf8).str.strip_chars().str.to_lowercase().fill_null(""),
        (pl.col("why").cast(pl.Utf8) if "why" in frame.columns else pl.lit(None, pl.Utf8)).fill_null(""),
        (pl.col("who").cast(pl.Utf8).str.strip_chars() if "who" in frame.columns else pl.lit(None, pl.Utf8))
        .alias("who"),
    ).filter(pl.col("decision") != "")  # undecided rows of a review queue
    rows = rows.with_columns(who=pl.coalesce(pl.when(pl.col("who") != "").then(pl.col("who")), pl.lit(who, pl.Utf8)))
    for row in rows.iter_rows(named=True):
        where = f"{path}: row {row['_row']}"
        if row["decision"] not in _DECISIONS:
            raise ManualDecisionError(f"{where}, field decision: {row['decision']!r}, expected link or unlink")
        if not row["record_a"] or not row["record_b"] or row["record_a"] == row["record_b"]:
            raise ManualDecisionError(f"{where}, fields record_a/record_b: two different record ids needed, "
                                      f"got {row['record_a']!r}/{row['record_b']!r}")
        if not row["who"]:
            raise ManualDecisionError(f"{where}, field who: empty and no --who given")
    return rows


def decide_from_file(mpi: MasterPatientIndex, path: Path, who: str | None = None) -> tuple[int, LinkResult | None]:
    """Record every decided row of ``path`` (record_a, record_b, decision, why[, who]) and apply them once;
    returns (decisions recorded, what applying them did)."""
    rows = _decisions_table(path, who)
    if rows.height == 0:
        return 0, None
    known = mpi.store.read("master_patient_index").select("record_id")
    for end in ("record_a", "record_b"):
        unknown = rows.join(known, left_on=end, right_on="record_id", how="anti")
        if unknown.height:
            first = unknown.row(0, named=True)
            raise ManualDecisionError(f"{path}: row {first['_row']}, field {end}: record {first[end]!r} is not in "
                                      f"the index ({unknown.height} such rows)")
    now = utc_now()
    decisions = rows.select("record_a", "record_b", "decision", "who", "why", decided_at=pl.lit(now))
    mpi.store.append("empi_manual_decisions", decisions.cast(TABLES["empi_manual_decisions"]))  # type: ignore[arg-type]
    audit = rows.select(
        event_time=pl.lit(now), event="manual_" + pl.col("decision"), master_id=pl.lit(None, pl.Utf8),
        other_master_id=pl.lit(None, pl.Utf8), record_a="record_a", record_b="record_b",
        score=pl.lit(None, pl.Float64), rule="manual_" + pl.col("decision"),
        reason=pl.col("who") + ": " + pl.col("why") + f" (bulk from {path.name})", batch_id=pl.lit(None, pl.Utf8),
    )
    mpi.store.append("empi_audit", audit.cast(TABLES["empi_audit"]))  # type: ignore[arg-type]
    return rows.height, mpi.apply_manual_decisions()
