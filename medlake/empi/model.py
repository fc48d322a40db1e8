"""The Fellegi–Sunter model on Splink: training and pair scoring on the engine's Splink backend.

The Splink database API comes from the engine (:meth:`medlake.engine.base.Engine.splink`): an in-process DuckDB
connection on the polars engine, the engine's SparkSession (``SparkAPI``) on Spark. Both evaluate the same comparison
levels (:mod:`medlake.empi.comparisons`). Training always runs in process on DuckDB (the embedded engine's backend)
over a bounded sample; a cluster backend scores (the part that grows with the data). A model saved by one backend
loads on the other (its trained parameters are copied onto the comparisons rebuilt in the loading backend's dialect).

Training uses a uniform sample of at most ``train_records`` records; u is estimated from a deliberately sized random
sample (``u_pairs``; ~4.5 µs a pair on DuckDB), m by EM on two blocking passes capped at ``em_pairs`` each, and the
prior from the deterministic ID rule. The trained model is saved as JSON next to the index so incremental runs
score new records without retraining.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from medlake.empi.comparisons import ported_settings, present_columns, settings_creator, with_blocking_columns
from medlake.empi.errors import EmpiError
from medlake.engine.base import SplinkOptions

if TYPE_CHECKING:
    from medlake.config import LakePath
    from medlake.engine.base import Engine

__all__ = ["PAIR_SCHEMA", "LinkageModel", "ModelSettings"]

PAIR_SCHEMA: dict[str, pl.DataType] = {
    "record_a": pl.Utf8(),
    "record_b": pl.Utf8(),
    "score": pl.Float64(),
    "rule": pl.Utf8(),
}


@dataclass(frozen=True)
class ModelSettings:
    """How the model is trained and how far scoring reaches."""

    u_pairs: float = 3e5
    train_records: int = 100_000  # a uniform sample this size trains as well as all records (the prior is a
    # pair fraction, u a random-pair estimate, m from EM) at a fraction of the cost
    em_pairs: float = 3e5
    seed: int = 11643
    review_threshold: float = 0.5  # pairs scored at or above this are kept (review or link)
    threads: int = 2  # DuckDB backend
    memory_limit: str = "2GB"  # DuckDB backend
    spark_break_lineage: str = "persist"  # Spark backend: SparkAPI break_lineage_method (persist|parquet|checkpoint)
    spark_partitions: int | None = None  # Spark backend: num_partitions_on_repartition (None: Splink's default)

    def splink_options(self) -> SplinkOptions:
        """How the engine sets up its Splink database API."""
        return SplinkOptions(threads=self.threads, memory_limit=self.memory_limit,
                             break_lineage=self.spark_break_lineage, partitions=self.spark_partitions)


def _clamp_prior(linker: Any, records: int) -> None:
    """On small or duplicate-free input the deterministic-rule estimate of the prior can be 0 (log of 0 when
    scoring): keep it inside (1/n², 0.5]."""
    core = linker._settings_obj.core_model_settings
    floor = 1.0 / max(records, 2) ** 2
    core.probability_two_random_records_match = min(max(core.probability_two_random_records_match, floor), 0.5)


def _training_engine() -> Engine:
    """Where models are trained: in process, on the embedded engine's DuckDB (see :meth:`LinkageModel.train`)."""
    from medlake.engine.polars_engine import PolarsEngine

    return PolarsEngine()


class LinkageModel:
    """A Splink linker on one engine's backend; features are polars frames with FEATURE_SCHEMA columns."""

    def __init__(self, settings: ModelSettings | None = None, engine: Engine | None = None) -> None:
        """Splink on ``engine``'s backend (default: the embedded engine's in-process DuckDB)."""
        self.settings = settings or ModelSettings()
        self.engine = engine if engine is not None else _training_engine()
        self._backend = self.engine.splink(self.settings.splink_options())
        self._db = self._backend.db_api
        self._linker: Any = None
        self._counter = 0
        self._prefix = f"empi_in_{uuid.uuid4().hex[:8]}"
        logging.getLogger("splink").setLevel(logging.WARNING)

    def _register(self, features: pl.DataFrame) -> Any:
        self._counter += 1
        table = with_blocking_columns(features.select([c for c in features.columns if c not in {"fingerprint"}]))
        table = table.to_arrow()
        return self._db.register(pa.table(table), table_name=f"{self._prefix}_{self._counter}")

    def train(self, features: pl.DataFrame) -> None:
        """Estimate prior, u and m from ``features`` (one dedupe job).

        Training always runs on DuckDB, in this process (:func:`_training_engine`), on a sample of at most
        ``train_records`` records: the cluster backends only score. So one input gives one model whichever engine
        runs the index (Splink picks its u sample by the backend's SQL ``hash``, which differs between DuckDB and
        Spark), and training costs seconds instead of ~70 small Spark jobs."""
        from splink import Linker, block_on
        from splink.internals.exceptions import EMTrainingException

        s = self.settings
        if features.height > s.train_records:
            features = features.sample(n=s.train_records, seed=s.seed)
        trainer = _training_engine()
        if self._backend.dialect != trainer.dialect:
            model = LinkageModel(self.settings, trainer)
            try:
                model.train(features)
                trained_model = model._require().misc.save_model_to_json()
            finally:
                model.close()
            ported = ported_settings(trained_model, self._backend.dialect)
            self._linker = Linker(self._register(features), ported, log_level=logging.WARNING)
            return
        columns = present_columns(features)
        if not columns:
            raise EmpiError("nothing to compare: every mapped field is empty")
        linker = Linker(self._register(features), settings_creator(columns), log_level=logging.WARNING)
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

    def load(self, path: LakePath, features: pl.DataFrame) -> None:
        """Use a saved model; ``features`` seeds the linker (it scores other tables too)."""
        from splink import Linker

        if not path.exists():
            raise EmpiError(f"{path}: no trained EMPI model; run a full link first")
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("sql_dialect") != self._backend.dialect:  # saved by the other engine's backend
            saved = ported_settings(saved, self._backend.dialect)
        self._linker = Linker(self._register(features), saved, log_level=logging.WARNING)

    def save(self, path: LakePath) -> None:
        """The trained model as JSON at ``path`` (a local path or an object-store ``UPath``)."""
        from medlake.empi.store import write_text_atomically  # the store loads the feature code (pypinyin)

        write_text_atomically(path, json.dumps(self._require().misc.save_model_to_json(), indent=1))

    def _require(self) -> Any:
        if self._linker is None:
            raise EmpiError("the EMPI model is neither trained nor loaded")
        return self._linker

    def _pairs(self, result: Any) -> pl.DataFrame:
        frame = pl.DataFrame(pl.from_arrow(self._backend.to_arrow(result, ["record_id_l", "record_id_r",
                                                                             "match_probability"])))
        result.drop_table_from_database_and_remove_from_cache()
        if frame.height == 0:
            return pl.DataFrame(schema=PAIR_SCHEMA)
        return frame.select(
            pl.col("record_id_l").cast(pl.Utf8).alias("record_a"),
            pl.col("record_id_r").cast(pl.Utf8).alias("record_b"),
            # 12 decimals: the backends' log/pow differ in the last bits; stored scores must not
            pl.col("match_probability").cast(pl.Float64).round(12).alias("score"),
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
        self._backend.close()
