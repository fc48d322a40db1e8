"""The yardstick for the EMPI evaluation: plain Splink with its out-of-the-box comparisons on simply normalised
input (trimmed, lower case, digits of phone and ID, dates in ``YYYY-MM-DD``/``YYYYMMDD``/``YYYY/MM/DD``), blocked
on each single field, trained the textbook way (random-sample u, EM on two blocking passes), clustered at the
link threshold. No pinyin, no ID validation, no household or guardian rules: what a first Splink user would run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import polars as pl

from medlake.empi.field_map import FieldMap

if TYPE_CHECKING:
    from medlake.engine.base import Engine

__all__ = ["baseline_assignments"]

_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")


def _simple(records: pl.DataFrame, field_map: FieldMap) -> pl.DataFrame:
    def text(column: str | None) -> pl.Expr:
        if column is None:
            return pl.lit(None, dtype=pl.Utf8)
        value = pl.col(column).cast(pl.Utf8).str.strip_chars().str.to_lowercase()
        return pl.when(value != "").then(value)

    def digits(column: str | None) -> pl.Expr:
        value = text(column).str.replace_all(r"[^0-9x]", "")
        return pl.when(value != "").then(value)

    born = text(field_map.birth_date)
    record_id = (
        pl.col(field_map.record_id).cast(pl.Utf8).str.strip_chars() if field_map.record_id
        else pl.int_range(1, pl.len() + 1).cast(pl.Utf8)
    )
    return records.select(
        record_id.alias("unique_id"),
        text(field_map.name).alias("name"),
        digits(field_map.id_number).alias("id_number"),
        pl.coalesce([born.str.strptime(pl.Date, f, strict=False) for f in _DATE_FORMATS])
        .dt.strftime("%Y-%m-%d").alias("birth_date"),
        text(field_map.sex).alias("sex"),
        digits(field_map.phone).alias("phone"),
        text(field_map.address).alias("address"),
    )


def _comparisons(present: set[str]) -> list[Any]:
    import splink.comparison_library as cl

    library = {
        "name": lambda: cl.NameComparison("name"),
        "id_number": lambda: cl.LevenshteinAtThresholds("id_number", [1, 2]),
        "birth_date": lambda: cl.DateOfBirthComparison("birth_date", input_is_string=True),
        "sex": lambda: cl.ExactMatch("sex"),
        "phone": lambda: cl.LevenshteinAtThresholds("phone", [1, 2]),
        "address": lambda: cl.JaroWinklerAtThresholds("address"),
    }
    return [make() for column, make in library.items() if column in present]


def baseline_assignments(
    records: pl.DataFrame, field_map: FieldMap, engine: Engine, link_threshold: float = 0.95
) -> pl.DataFrame:
    """``record_id, master_id`` from plain Splink on ``engine``'s Splink database API."""
    from splink import Linker, SettingsCreator, block_on

    from medlake.engine.base import SplinkOptions

    frame = _simple(records, field_map)
    present = {c for c in frame.columns if c != "unique_id" and frame[c].null_count() < frame.height}
    rules = [block_on(c) for c in ("id_number", "name", "birth_date", "phone") if c in present]
    settings = SettingsCreator(
        link_type="dedupe_only", comparisons=_comparisons(present), blocking_rules_to_generate_predictions=rules,
        retain_matching_columns=False, retain_intermediate_calculation_columns=False,
    )
    backend = engine.splink(SplinkOptions(threads=2))
    try:
        linker = Linker(backend.db_api.register(frame.to_arrow(), table_name="baseline_input"), settings,
                        log_level=logging.WARNING)
        linker.training.estimate_probability_two_random_records_match(rules, recall=0.7)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
        for rule in rules[:2] if len(rules) > 1 else rules:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        predictions = linker.inference.predict(threshold_match_probability=min(0.5, link_threshold))
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=link_threshold
        )
        found = pl.DataFrame(pl.from_arrow(backend.to_arrow(clusters, ["unique_id", "cluster_id"]))).select(
            pl.col("unique_id").cast(pl.Utf8).alias("record_id"), pl.col("cluster_id").cast(pl.Utf8).alias("master_id")
        )
    finally:
        backend.close()
    return found
