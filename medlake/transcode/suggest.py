"""Suggest national codes for unmapped local codes by Chinese-name similarity, pinyin-aware.

Two rapidfuzz score matrices are computed with ``process.cdist`` (C++, no Python loop over pairs): one over the
characters as written (Indel similarity) and one over their pinyin readings (catches
homophone typos such as 阿莫西临 for 阿莫西林). The blend of both ranks the catalogue; the top ``limit`` per name
are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import polars as pl
from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz, process, utils

__all__ = ["SUGGESTION_DTYPE", "pinyin_reading", "suggest_codes"]

SUGGESTION_DTYPE = pl.List(
    pl.Struct({"national_code": pl.Utf8, "national_name": pl.Utf8, "score": pl.Float64})
)
_BLOCK = 512  # query rows per score block: bounds memory to _BLOCK × catalogue floats per matrix


@lru_cache(maxsize=200_000)
def pinyin_reading(name: str) -> str:
    """Toneless pinyin syllables separated by spaces; characters without a reading are kept as they are."""
    return " ".join(lazy_pinyin(name, style=Style.NORMAL, errors="default"))


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores per row, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def suggest_codes(
    names: Sequence[str],
    catalogue: pl.DataFrame,
    *,
    limit: int = 3,
    name_weight: float = 0.6,
) -> pl.Series:
    """For each name, the ``limit`` most similar catalogue entries as a list of (code, name, score 0–100)."""
    if not names:
        return pl.Series("suggestions", [], dtype=SUGGESTION_DTYPE)
    if catalogue.height == 0:
        return pl.Series("suggestions", [[] for _ in names], dtype=SUGGESTION_DTYPE)
    codes = catalogue["national_code"].to_list()
    cat_names = [n or "" for n in catalogue["national_name"].to_list()]
    cat_readings = [pinyin_reading(n) for n in cat_names]
    queries = [n or "" for n in names]
    readings = [pinyin_reading(q) for q in queries]
    k = min(limit, len(codes))
    out: list[list[dict[str, object]]] = []
    for start in range(0, len(queries), _BLOCK):
        block = slice(start, start + _BLOCK)
        by_name = process.cdist(queries[block], cat_names, scorer=fuzz.ratio, dtype=np.float32, workers=1)
        by_sound = process.cdist(
            readings[block], cat_readings, scorer=fuzz.ratio, processor=utils.default_process,
            dtype=np.float32, workers=1,
        )
        blended = name_weight * by_name + (1.0 - name_weight) * by_sound
        best = _top_k(blended, k)
        top_scores = np.take_along_axis(blended, best, axis=1)
        out.extend(
            [
                {"national_code": codes[j], "national_name": cat_names[j], "score": round(float(s), 1)}
                for j, s in zip(row, row_scores, strict=True)
            ]
            for row, row_scores in zip(best, top_scores, strict=True)
        )
    return pl.Series("suggestions", out, dtype=SUGGESTION_DTYPE)
