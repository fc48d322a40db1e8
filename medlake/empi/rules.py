"""Deterministic rules over scored pairs, applied after the Fellegi–Sunter model.

Household members share a phone and an address; the model treats those agreements as independent evidence and
so can link a father with his son, or one twin with the other. The household rule keeps such pairs apart: two
records whose names disagree (no common pinyin key, and the pinyin strings' Jaro–Winkler similarity below
:data:`NAME_AGREEMENT`) or whose birth dates contradict each other (more than one keying slip apart, see
:func:`medlake.empi.normalize.birth_dates_contradict`) are not the same person unless their ID numbers agree or
differ by one keying slip (one digit, or two adjacent digits swapped) — whatever their phone or address (same
birth date and different given names: twins, whose ID numbers differ in the sequence number and the check
character). Pairs it removes are neither linked nor queued for review; an ID-number pair is never removed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from medlake.empi.normalize import birth_dates_contradict

__all__ = ["NAME_AGREEMENT", "apart_by_household_rule"]

NAME_AGREEMENT = 0.9
"""Jaro–Winkler similarity of the pinyin forms from which two names count as the same name mistyped."""


def _pairwise(left: pl.Series, right: pl.Series, scorer: str) -> pl.Series:
    """Row-wise ``JaroWinkler`` similarity or ``DamerauLevenshtein`` distance (null where a side is null)."""
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

    function = {"JaroWinkler": JaroWinkler.similarity, "DamerauLevenshtein": DamerauLevenshtein.distance}[scorer]
    both = (left.is_not_null() & right.is_not_null()).to_numpy()
    out = np.full(left.len(), np.nan)
    if both.any():
        out[both] = process.cpdist(left.filter(both).to_list(), right.filter(both).to_list(), scorer=function,
                                   workers=1)
    return pl.Series(out).fill_nan(None)


def apart_by_household_rule(pairs: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """``pairs`` (record_a, record_b, score, rule) without the model pairs the household rule keeps apart;
    ``features`` holds both ends (record_id, name_keys, name_pinyin, id_number)."""
    model_pairs = pairs.filter(pl.col("rule") != "id_number")
    if model_pairs.height == 0:
        return pairs
    side = features.select("record_id", "name_keys", "name_pinyin", "id_number", "birth_date").unique("record_id")
    joined = model_pairs.join(side, left_on="record_a", right_on="record_id", how="left").join(
        side, left_on="record_b", right_on="record_id", how="left", suffix="_b"
    )
    similarity = _pairwise(joined["name_pinyin"], joined["name_pinyin_b"], "JaroWinkler")
    common = joined.select(pl.col("name_keys").list.set_intersection("name_keys_b").list.len())["name_keys"]
    names_disagree = (common == 0) & (similarity < NAME_AGREEMENT)
    same_id = (_pairwise(joined["id_number"], joined["id_number_b"], "DamerauLevenshtein") <= 1).fill_null(False)
    dates_contradict = joined.select(birth_dates_contradict(pl.col("birth_date"), pl.col("birth_date_b")))
    disagree = names_disagree.fill_null(False) | dates_contradict.to_series().fill_null(False)
    apart = (disagree & ~same_id).alias("_apart")
    kept = joined.with_columns(apart).filter(~pl.col("_apart")).select(pairs.columns)
    return pl.concat([pairs.filter(pl.col("rule") == "id_number"), kept])
