"""The Fellegi–Sunter model on Splink: comparisons, training, and pair scoring, on DuckDB or on Spark.

The Splink backend follows the engine (:data:`BACKENDS`, keyed by ``Settings.engine``): ``polars`` runs Splink on an
in-process DuckDB connection, ``spark`` on medlake's SparkSession (``SparkAPI``). Both evaluate the same comparison
levels: on Spark, ``jaro_winkler`` and ``damerau_levenshtein`` are Arrow UDFs on rapidfuzz, the algorithms DuckDB
implements (character-based; Splink's bundled Scala jar loads on Spark 4 but its commons-text Jaro–Winkler differs
from DuckDB's by up to 0.12 on some pairs, so it is not registered). Training always runs on DuckDB over a bounded
sample; the Spark backend scores (the part that grows with the data). A model saved by one backend loads on the
other (its trained parameters are copied onto the comparisons rebuilt in the loading backend's dialect).

Only the columns a field map provides are compared. Training uses a uniform sample of at most ``train_records``
records; u is estimated from a deliberately sized random sample
(``u_pairs``; ~4.5 µs a pair on DuckDB), m by EM on two blocking passes capped at ``em_pairs`` each, and the
prior from the deterministic ID rule. The trained model is saved as JSON next to the index so incremental runs
score new records without retraining.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
import pyarrow as pa

from medlake.empi.errors import EmpiError

if TYPE_CHECKING:
    from medlake.config import LakePath, Settings

__all__ = ["BACKENDS", "BLOCKING_KEYS", "PAIR_SCHEMA", "LinkageModel", "ModelSettings", "blocking_candidates",
           "with_blocking_columns"]

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
    threads: int = 2  # DuckDB backend
    memory_limit: str = "2GB"  # DuckDB backend
    spark_break_lineage: str = "persist"  # Spark backend: SparkAPI break_lineage_method (persist|parquet|checkpoint)
    spark_partitions: int | None = None  # Spark backend: num_partitions_on_repartition (None: Splink's default)


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


BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("id_number",),
    ("birth_date", "name_key"),
    ("phone",),
    ("name_key", "region"),
    ("birth_date", "region", "sex"),
    ("name_key", "phone"),
    ("address", "birth_date"),
    # typo-tolerant keys (derived columns, see with_blocking_columns): a typo rarely hits both ends of a name
    ("birth_date", "name_head"),
    ("birth_date", "name_tail"),
    ("birth_date", "address_head"),
    ("address_head", "name_head"),
)
_DERIVED_KEYS: dict[str, tuple[str, pl.Expr]] = {  # key column: (the feature it is cut from, how)
    "name_head": ("name_pinyin", pl.col("name_pinyin").str.slice(0, 3)),
    "name_tail": ("name_pinyin", pl.col("name_pinyin").str.slice(-3)),
    "address_head": ("address", pl.col("address").str.slice(0, 6)),
}


def with_blocking_columns(features: pl.DataFrame) -> pl.DataFrame:
    """``features`` plus the derived blocking-key columns (name and address heads/tails) their sources allow."""
    derived = {k: e for k, (source, e) in _DERIVED_KEYS.items() if source in features.columns}
    return features.with_columns(**derived) if derived else features


def blocking_candidates(existing: pl.DataFrame, incoming: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``existing`` that share at least one blocking key with ``incoming`` (nulls never agree, as in
    SQL): the only ones ``predict_between`` can pair, so scoring registers these instead of the whole index."""
    ids: list[pl.Series] = []
    existing, incoming = with_blocking_columns(existing), with_blocking_columns(incoming)
    for cols in BLOCKING_KEYS:
        if set(cols) <= set(existing.columns) & set(incoming.columns):
            keys = incoming.select(cols).drop_nulls().unique()
            ids.append(existing.select("record_id", *cols).join(keys, on=list(cols), how="semi")["record_id"])
    if not ids:
        return existing.drop(_DERIVED_KEYS, strict=False)
    chosen = pl.concat(ids).unique().implode()
    return existing.drop(_DERIVED_KEYS, strict=False).filter(pl.col("record_id").is_in(chosen))


def _blocking_rules(columns: set[str]) -> list[Any]:
    from splink import block_on

    available = columns | ({"name_key", "name_head", "name_tail"} if "name_norm" in columns else set())
    available |= {"address_head"} if "address" in columns else set()
    rules = [block_on(*cols) for cols in BLOCKING_KEYS if set(cols) <= available]
    if not rules:
        raise EmpiError("no blocking rule fits the mapped fields; map at least name or id_number")
    return rules


def _present_columns(features: pl.DataFrame) -> set[str]:
    return {c for c in _MODEL_COLUMNS if c in features.columns and features[c].null_count() < features.height}


def _settings_creator(columns: set[str]) -> Any:
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=_comparisons(columns),
        blocking_rules_to_generate_predictions=_blocking_rules(columns),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


_LEVEL_PARAMETERS = ("m_probability", "u_probability", "fix_m_probability", "fix_u_probability")


def _ported_settings(saved: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A model saved in another SQL dialect, rebuilt from this module's comparisons in ``dialect`` with the saved
    prior and m/u values (the comparison SQL in the JSON is dialect-specific; the parameters are not)."""
    columns = {"name_norm" if c["output_column_name"] == "name" else c["output_column_name"]
               for c in saved["comparisons"]}
    fresh = _settings_creator(columns).get_settings(dialect).as_dict()
    names = [c["output_column_name"] for c in fresh["comparisons"]]
    if names != [c["output_column_name"] for c in saved["comparisons"]]:
        raise EmpiError(f"saved EMPI model compares {[c['output_column_name'] for c in saved['comparisons']]}, "
                        f"this version builds {names}: retrain (link with retrain=True)")
    for new, old in zip(fresh["comparisons"], saved["comparisons"], strict=True):
        levels, old_levels = new["comparison_levels"], old["comparison_levels"]
        if [lv["label_for_charts"] for lv in levels] != [lv["label_for_charts"] for lv in old_levels]:
            raise EmpiError(f"saved EMPI model: levels of {new['output_column_name']} differ from this version's; "
                            "retrain (link with retrain=True)")
        for level, old_level in zip(levels, old_levels, strict=True):
            level.update({k: old_level[k] for k in _LEVEL_PARAMETERS if k in old_level})
    fresh["probability_two_random_records_match"] = saved["probability_two_random_records_match"]
    return fresh


# --------------------------------------------------------------------------- Splink backends, one per engine

class SplinkBackend(Protocol):
    """A Splink database API plus what differs per backend around it."""

    db_api: Any
    dialect: str

    def to_polars(self, result: Any, columns: Sequence[str]) -> pl.DataFrame: ...

    def close(self) -> None: ...


class _DuckDBBackend:
    """Splink on an in-process DuckDB connection (the polars engine's backend)."""

    dialect = "duckdb"

    def __init__(self, settings: ModelSettings, cfg: Settings | None) -> None:
        import duckdb
        from splink import DuckDBAPI

        self._con = duckdb.connect()
        self._con.execute(f"SET threads={int(settings.threads)}")
        self._con.execute(f"SET memory_limit='{settings.memory_limit}'")
        self._con.execute("SET enable_progress_bar=false")
        self.db_api = DuckDBAPI(connection=self._con)

    def to_polars(self, result: Any, columns: Sequence[str]) -> pl.DataFrame:
        return result.as_duckdbpyrelation().pl().select(columns)

    def close(self) -> None:
        self._con.close()


def _register_spark_functions(spark: Any) -> None:
    """``jaro_winkler`` and ``damerau_levenshtein`` as Splink's Spark dialect calls them, with DuckDB's results:
    rapidfuzz implements the algorithms DuckDB uses (character-based Jaro–Winkler, unrestricted Damerau–Levenshtein).

    The UDFs are closures (cloudpickle ships them by value): a Python worker needs numpy, pyarrow and rapidfuzz,
    not medlake.
    """
    from pyspark.sql.functions import arrow_udf

    def pairwise(left: pa.Array, right: pa.Array, scorer: str) -> pa.Array:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

        valid = pc.and_(pc.is_valid(left), pc.is_valid(right))
        mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
        a, b = pc.filter(left, valid).to_pylist(), pc.filter(right, valid).to_pylist()
        if scorer == "jaro_winkler":
            out = np.zeros(len(mask), dtype=np.float64)
            if a:
                found = process.cpdist(a, b, scorer=JaroWinkler.similarity, dtype=np.float64, workers=1)
                # DuckDB: similarity 0 when a side is empty, even against another empty string
                out[mask] = np.where([not x or not y for x, y in zip(a, b, strict=True)], 0.0, found)
            return pa.array(out, type=pa.float64(), mask=~mask)
        out = np.zeros(len(mask), dtype=np.int64)
        if a:
            out[mask] = process.cpdist(a, b, scorer=DamerauLevenshtein.distance, workers=1)
        return pa.array(out, type=pa.int64(), mask=~mask)

    def jaro_winkler(left: pa.Array, right: pa.Array) -> pa.Array:
        return pairwise(left, right, "jaro_winkler")

    def damerau_levenshtein(left: pa.Array, right: pa.Array) -> pa.Array:
        return pairwise(left, right, "damerau_levenshtein")

    spark.udf.register("jaro_winkler", arrow_udf(jaro_winkler, "double"))
    spark.udf.register("damerau_levenshtein", arrow_udf(damerau_levenshtein, "bigint"))


def _double_literal(node: Any) -> Any:
    """``CAST(0.25 AS DOUBLE)`` → ``0.25D``: what Splink's ``customspark`` sqlglot dialect does (a long decimal
    literal would otherwise be parsed as DECIMAL, limited to 38 digits)."""
    from sqlglot import exp

    if (isinstance(node, exp.Cast) and node.to.is_type("double") and isinstance(node.this, exp.Literal)
            and node.this.is_number and node.name != "Infinity"):
        return exp.Literal.number(f"{node.this.name}D")
    return node


@cache
def _spark_api_class() -> type:
    """SparkAPI that remembers the temp views it creates, so a model can drop them (and their caches) on close,
    and that renders its SQL without Splink's ``customspark`` dialect: that dialect subclasses sqlglot's Spark
    generator, which the compiled sqlglot build (sqlglotc, in requirements.lock) refuses to instantiate
    ("TypeError: interpreted classes cannot inherit from compiled", tobymao/sqlglot#7923)."""
    import sqlglot
    from splink import SparkAPI

    class TrackedSparkAPI(SparkAPI):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            self.created: list[str] = []
            super().__init__(**kwargs)

        def _setup_for_execute_sql(self, sql: str, physical_name: str) -> str:
            tree = sqlglot.parse_one(sql, read="spark").transform(_double_literal)
            return tree.sql(dialect="spark", pretty=True)

        def _table_registration(self, input: Any, table_name: str) -> None:
            super()._table_registration(input, table_name)
            self.created.append(table_name)

        def _cleanup_for_execute_sql(self, table: Any, templated_name: str, physical_name: str) -> Any:
            self.created.append(physical_name)
            return super()._cleanup_for_execute_sql(table, templated_name, physical_name)

    return TrackedSparkAPI


class _SparkBackend:
    """Splink on medlake's SparkSession (the spark engine's backend)."""

    dialect = "spark"

    def __init__(self, settings: ModelSettings, cfg: Settings | None) -> None:
        from medlake.engine.spark_session import get_spark

        self.spark = get_spark(cfg)
        _register_spark_functions(self.spark)
        self.db_api = _spark_api_class()(
            spark_session=self.spark,
            break_lineage_method=settings.spark_break_lineage,
            num_partitions_on_repartition=settings.spark_partitions,
            register_udfs_automatically=False,
        )

    def to_polars(self, result: Any, columns: Sequence[str]) -> pl.DataFrame:
        frame = self.spark.table(result.physical_name).select(*columns)
        return pl.DataFrame(pl.from_arrow(frame.toArrow()))

    def close(self) -> None:
        for name in dict.fromkeys(reversed(self.db_api.created)):
            try:
                self.spark.catalog.dropTempView(name)  # also uncaches a persisted view
            except Exception:  # already dropped by Splink, or never created: nothing to release
                continue
        self.db_api.created.clear()


_TRAINING_BACKEND, _TRAINING_DIALECT = "polars", "duckdb"  # see LinkageModel.train

BACKENDS: dict[str, Callable[[ModelSettings, Settings | None], SplinkBackend]] = {
    "polars": _DuckDBBackend,
    "spark": _SparkBackend,
}
"""Splink backend per engine name (``Settings.engine``)."""


class LinkageModel:
    """A Splink linker on one backend; features are polars frames with FEATURE_SCHEMA columns."""

    def __init__(
        self, settings: ModelSettings | None = None, backend: str = "polars", engine_settings: Settings | None = None
    ) -> None:
        self.settings = settings or ModelSettings()
        try:
            factory = BACKENDS[backend]
        except KeyError:
            raise EmpiError(f"EMPI backend {backend!r}: expected one of {', '.join(BACKENDS)}") from None
        self.backend = backend
        self._backend = factory(self.settings, engine_settings)
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

        Training always runs on DuckDB, in this process, on a sample of at most ``train_records`` records: the
        cluster backends only score. So one input gives one model whichever engine runs the index (Splink picks
        its u sample by the backend's SQL ``hash``, which differs between DuckDB and Spark), and training costs
        seconds instead of ~70 small Spark jobs."""
        from splink import Linker, block_on
        from splink.internals.exceptions import EMTrainingException

        s = self.settings
        if features.height > s.train_records:
            features = features.sample(n=s.train_records, seed=s.seed)
        if self._backend.dialect != _TRAINING_DIALECT:
            trainer = LinkageModel(self.settings, backend=_TRAINING_BACKEND)
            try:
                trainer.train(features)
                trained_model = trainer._require().misc.save_model_to_json()
            finally:
                trainer.close()
            ported = _ported_settings(trained_model, self._backend.dialect)
            self._linker = Linker(self._register(features), ported, log_level=logging.WARNING)
            return
        columns = _present_columns(features)
        if not columns:
            raise EmpiError("nothing to compare: every mapped field is empty")
        linker = Linker(self._register(features), _settings_creator(columns), log_level=logging.WARNING)
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
            saved = _ported_settings(saved, self._backend.dialect)
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
        frame = self._backend.to_polars(result, ["record_id_l", "record_id_r", "match_probability"])
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
