"""What the Fellegi–Sunter model compares and how it blocks: Splink comparisons and settings, in any SQL dialect.

Only the columns a field map provides are compared. A model saved in one dialect is rebuilt from these comparisons
in another with its trained parameters (:func:`ported_settings`), so an index continues on either engine.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from medlake.empi.errors import EmpiError

__all__ = [
    "BLOCKING_KEYS",
    "MODEL_COLUMNS",
    "blocking_candidates",
    "blocking_rules",
    "comparisons",
    "ported_settings",
    "present_columns",
    "settings_creator",
    "with_blocking_columns",
]

MODEL_COLUMNS = ("name_norm", "id_number", "birth_date", "sex", "phone", "address", "region")


def comparisons(columns: set[str]) -> list[Any]:
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


def blocking_rules(columns: set[str]) -> list[Any]:
    from splink import block_on

    available = columns | ({"name_key", "name_head", "name_tail"} if "name_norm" in columns else set())
    available |= {"address_head"} if "address" in columns else set()
    rules = [block_on(*cols) for cols in BLOCKING_KEYS if set(cols) <= available]
    if not rules:
        raise EmpiError("no blocking rule fits the mapped fields; map at least name or id_number")
    return rules


def present_columns(features: pl.DataFrame) -> set[str]:
    return {c for c in MODEL_COLUMNS if c in features.columns and features[c].null_count() < features.height}


def settings_creator(columns: set[str]) -> Any:
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=comparisons(columns),
        blocking_rules_to_generate_predictions=blocking_rules(columns),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


_LEVEL_PARAMETERS = ("m_probability", "u_probability", "fix_m_probability", "fix_u_probability")


def ported_settings(saved: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A model saved in another SQL dialect, rebuilt from this module's comparisons in ``dialect`` with the saved
    prior and m/u values (the comparison SQL in the JSON is dialect-specific; the parameters are not)."""
    columns = {"name_norm" if c["output_column_name"] == "name" else c["output_column_name"]
               for c in saved["comparisons"]}
    fresh = settings_creator(columns).get_settings(dialect).as_dict()
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
