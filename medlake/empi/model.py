"""The Fellegi–Sunter model on Splink (DuckDB backend): comparisons, training, and pair scoring.

Only the columns a field map provides are compared. Training uses a uniform sample of at most ``train_records``
records; u is estimated from a deliberately sized random sample
(``u_pairs``; ~4.5 µs a pair on DuckDB), m by EM on two blocking passes capped at ``em_pairs`` each, and the
prior from the deterministic ID rule. The trained model is saved as JSON next to the index so incremental runs
score new records without retraining.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from medlake.empi.errors import EmpiError

__all__ = ["PAIR_SCHEMA", "LinkageModel", "ModelSettings", "blocking_candidates"]

PAIR_SCHEMA: dict[str, pl.DataType] = {
    "record_a": pl.Utf8(),
    "record_b": pl.Utf8(),
    "score": pl.Float64(),
    "rule": pl.Utf8(),
}
_MODEL_COLUMNS = ("name_norm", "id_number", "birth_date", "sex", "phone", "address", "region")


@dataclass(frozen=True)
class ModelSettings:
    """How the model is trained and how far scoring reaches."""

    u_pairs: float = 3e5
    train_records: int = 100_000  # a uniform sample this size trains as well as all records (the prior is a
    # pair fraction, u a random-pair estimate, m from EM) at a fraction of the cost
    em_pairs: float = 3e5
    seed: int = 11643
    review_threshold: float = 0.5  # pairs scored at or above this are kept (review or link)
    threads: int = 2
    memory_limit: str = "2GB"


def _comparisons(columns: set[str]) -> list[Any]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    found: list[Any] = []
    if "name_norm" in columns:
        found.append(cl.CustomComparison(
            [
                cll.NullLevel("name_norm"),
                cll.ExactMatchLevel("name_norm"),
                cll.ArrayIntersectLevel("name_keys", 1).configure(label_for_charts="pinyin keys agree"),
                cll.JaroWinklerLevel("name_pinyin", 0.9),
                cll.ArrayIntersectLevel("surnames", 1).configure(label_for_charts="surname agrees"),
                cll.ElseLevel(),
            ],
            output_column_name="name",
        ))
    if "id_number" in columns:
        found.append(cl.CustomComparison(
            [
                cll.NullLevel("id_number"),
                cll.ExactMatchLevel("id_number"),
                cll.DamerauLevenshteinLevel("id_number", 1),  # ≤ 2 edits links same-county same-day births
                cll.ElseLevel(),
            ],
            output_column_name="id_number",
        ))
    if "birth_date" in columns:
        found.append(cl.DamerauLevenshteinAtThresholds("birth_date", [1]))
    if "sex" in columns:
        found.append(cl.ExactMatch("sex"))
    if "phone" in columns:
        found.append(cl.DamerauLevenshteinAtThresholds("phone", [1]))
    if "address" in columns:
        found.append(cl.JaroWinklerAtThresholds("address", [0.9]))
    if "region" in columns:
        found.append(cl.CustomComparison(
            [
                cll.NullLevel("region"),
                cll.ExactMatchLevel("region"),
                cll.CustomLevel("substr(region_l, 1, 4) = substr(region_r, 1, 4)").configure(
                    label_for_charts="same prefecture"
                ),
                cll.ElseLevel(),
            ],
            output_column_name="region",
        ))
    return found


def _clamp_prior(linker: Any, records: int) -> None:
    """On small or duplicate-free input the deterministic-rule estimate of the prior can be 0 (log of 0 when
    scoring): keep it inside (1/n², 0.5]."""
    core = linker._settings_obj.core_model_settings
    floor = 1.0 / max(records, 2) ** 2
    core.probability_two_random_records_match = min(max(core.probability_two_random_records_match, floor), 0.5)


_BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("id_number",),
    ("birth_date", "name_key"),
    ("phone",),
    ("name_key", "region"),
    ("birth_date", "region", "sex"),
    ("name_key", "phone"),
    ("address", "birth_date"),
)


def blocking_candidates(existing: pl.DataFrame, incoming: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``existing`` that share at least one blocking key with ``incoming`` (nulls never agree, as in
    SQL): the only ones ``predict_between`` can pair, so scoring registers these instead of the whole index."""
    ids: list[pl.Series] = []
    for cols in _BLOCKING_KEYS:
        if set(cols) <= set(existing.columns) & set(incoming.columns):
            keys = incoming.select(cols).drop_nulls().unique()
            ids.append(existing.select("record_id", *cols).join(keys, on=list(cols), how="semi")["record_id"])
    if not ids:
        return existing
    return existing.filter(pl.col("record_id").is_in(pl.concat(ids).unique().implode()))


def _blocking_rules(columns: set[str]) -> list[Any]:
    from splink import block_on

    available = columns | ({"name_key"} if "name_norm" in columns else set())
    rules = [block_on(*cols) for cols in _BLOCKING_KEYS if set(cols) <= available]
    if not rules:
        raise EmpiError("no blocking rule fits the mapped fields; map at least name or id_number")
    return rules


def _present_columns(features: pl.DataFrame) -> set[str]:
    return {c for c in _MODEL_COLUMNS if c in features.columns and features[c].null_count() < features.height}


class LinkageModel:
    """A Splink linker over one DuckDB connection; features are polars frames with FEATURE_SCHEMA columns."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        from splink import DuckDBAPI

        self.settings = settings or ModelSettings()
        self._con = duckdb.connect()
        self._con.execute(f"SET threads={int(self.settings.threads)}")
        self._con.execute(f"SET memory_limit='{self.settings.memory_limit}'")
        self._con.execute("SET enable_progress_bar=false")
        self._db = DuckDBAPI(connection=self._con)
        self._linker: Any = None
        self._counter = 0
        logging.getLogger("splink").setLevel(logging.WARNING)

    def _register(self, features: pl.DataFrame) -> Any:
        self._counter += 1
        table = features.select([c for c in features.columns if c not in {"fingerprint"}]).to_arrow()
        return self._db.register(pa.table(table), table_name=f"empi_in_{self._counter}")

    def train(self, features: pl.DataFrame) -> None:
        """Estimate prior, u and m from ``features`` (one dedupe job)."""
        from splink import Linker, SettingsCreator, block_on
        from splink.internals.exceptions import EMTrainingException

        s = self.settings
        if features.height > s.train_records:
            features = features.sample(n=s.train_records, seed=s.seed)
        columns = _present_columns(features)
        if not columns:
            raise EmpiError("nothing to compare: every mapped field is empty")
        creator = SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="record_id",
            comparisons=_comparisons(columns),
            blocking_rules_to_generate_predictions=_blocking_rules(columns),
            retain_matching_columns=False,
            retain_intermediate_calculation_columns=False,
        )
        linker = Linker(self._register(features), creator, log_level=logging.WARNING)
        available = columns | ({"name_key"} if "name_norm" in columns else set())
        if "id_number" in columns:
            linker.training.estimate_probability_two_random_records_match([block_on("id_number")], recall=0.8)
        elif {"name_key", "birth_date"} <= available:
            linker.training.estimate_probability_two_random_records_match(
                [block_on("name_key", "birth_date")], recall=0.6
            )
        _clamp_prior(linker, features.height)
        linker.training.estimate_u_using_random_sampling(max_pairs=s.u_pairs, seed=s.seed)
        passes = (("birth_date",), ("name_key", "sex"), ("phone",), ("name_key",))
        candidates = [r for r in passes if set(r) <= available]
        trained = 0
        for cols in candidates:
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    block_on(*cols), estimate_without_term_frequencies=True, max_pairs=s.em_pairs
                )
            except (ValueError, EMTrainingException) as exc:  # underflow, or no pairs on this pass: try the next
                logging.getLogger(__name__).warning("EM blocked on %s skipped: %s", cols, exc)
                continue
            trained += 1
            if trained == 2:
                break
        if not trained:  # small or sparse input: keep the estimated u and Splink's default m values
            logging.getLogger(__name__).warning(
                "EM could not train on any of %s (%d records); using default m probabilities", candidates,
                features.height,
            )
        self._linker = linker

    def load(self, path: Path, features: pl.DataFrame) -> None:
        """Use a saved model; ``features`` seeds the linker (it scores other tables too)."""
        from splink import Linker

        if not path.exists():
            raise EmpiError(f"{path}: no trained EMPI model; run a full link first")
        self._linker = Linker(self._register(features), str(path), log_level=logging.WARNING)

    def save(self, path: Path) -> None:
        self._require().misc.save_model_to_json(str(path), overwrite=True)

    def _require(self) -> Any:
        if self._linker is None:
            raise EmpiError("the EMPI model is neither trained nor loaded")
        return self._linker

    def _pairs(self, result: Any) -> pl.DataFrame:
        frame = result.as_duckdbpyrelation().pl()
        result.drop_table_from_database_and_remove_from_cache()
        if frame.height == 0:
            return pl.DataFrame(schema=PAIR_SCHEMA)
        return frame.select(
            pl.col("record_id_l").cast(pl.Utf8).alias("record_a"),
            pl.col("record_id_r").cast(pl.Utf8).alias("record_b"),
            pl.col("match_probability").cast(pl.Float64).alias("score"),
            pl.lit("fellegi_sunter").alias("rule"),
        )

    def score_within(self, features: pl.DataFrame, blocking: Sequence[str] | None = None) -> pl.DataFrame:
        """Scored pairs inside ``features`` at or above the review threshold."""
        linker = self._require()
        result = linker.inference.predict_within(
            self._register(features),
            blocking_rules_to_generate_predictions=list(blocking) if blocking else None,
            threshold_match_probability=self.settings.review_threshold,
            warning_mode="never",
        )
        return self._pairs(result)

    def score_between(self, existing: pl.DataFrame, incoming: pl.DataFrame) -> pl.DataFrame:
        """Scored pairs between existing and incoming records (never within either side)."""
        if existing.height == 0 or incoming.height == 0:
            return pl.DataFrame(schema=PAIR_SCHEMA)
        linker = self._require()
        result = linker.inference.predict_between(
            self._register(existing),
            self._register(incoming),
            threshold_match_probability=self.settings.review_threshold,
            warning_mode="never",
        )
        return self._pairs(result)

    def close(self) -> None:
        self._con.close()
