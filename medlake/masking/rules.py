"""De-identification rules in the style of GB/T 39725-2020 §10.2 / Appendix G, as narwhals expressions.

Each rule turns one column into its masked form, vectorized: partial masking keeps what a statistician needs
(ID number → region + birth year, phone → 3 + **** + 4, name → surname + *), generalization coarsens (date →
year, region → prefecture). Salted hashing is not expressible in narwhals and lives in ``hashing``.
"""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw

__all__ = ["COMPOUND_SURNAMES", "GENERALIZERS", "PARTIAL_MASKS"]

# Two-character surnames (复姓) that are common enough to matter when keeping the surname.
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
    "轩辕", "令狐", "钟离", "端木", "南宫", "独孤", "西门", "澹台", "公冶", "申屠", "太史", "闻人", "呼延",
)


def _text(column: str) -> nw.Expr:
    return nw.col(column).cast(nw.String).str.strip_chars()


def _id_number(column: str) -> nw.Expr:
    """Region (6) + birth year (4) kept, the rest starred: ``3301021985********``."""
    value = _text(column)
    return nw.when(value.str.len_chars() < 10).then(nw.lit("******************")).otherwise(
        nw.concat_str(value.str.slice(0, 10), nw.lit("********"))  # null stays null
    )


def _phone(column: str) -> nw.Expr:
    """First 3 and last 4 digits kept: ``138****5678``; shorter numbers are starred entirely."""
    value = _text(column)
    return nw.when(value.str.len_chars() < 7).then(nw.lit("****")).otherwise(
        nw.concat_str(value.str.slice(0, 3), nw.lit("****"), value.str.tail(4))  # null stays null
    )


def _name(column: str) -> nw.Expr:
    """Surname (one character, or two for a compound surname) + ``*``."""
    value = _text(column)
    head2 = value.str.slice(0, 2)
    surname = nw.when(head2.is_in(COMPOUND_SURNAMES)).then(head2).otherwise(value.str.slice(0, 1))
    return nw.concat_str(surname, nw.lit("*"))


def _year(column: str, dtype: nw.dtypes.DType) -> nw.Expr:
    """Year of a date, datetime or ``YYYY…`` text, as an integer."""
    if isinstance(dtype, nw.Date | nw.Datetime):
        return nw.col(column).dt.year().cast(nw.Int64)
    return _text(column).str.slice(0, 4).cast(nw.Int64)


def _prefecture(column: str, dtype: nw.dtypes.DType) -> nw.Expr:
    """GB/T 2260 region code coarsened to its prefecture: ``330102`` → ``330100``."""
    value = _text(column)
    return nw.when(value.str.len_chars() >= 4).then(nw.concat_str(value.str.slice(0, 4), nw.lit("00")))


PARTIAL_MASKS: dict[str, Callable[[str], nw.Expr]] = {"id_number": _id_number, "phone": _phone, "name": _name}
GENERALIZERS: dict[str, Callable[[str, nw.dtypes.DType], nw.Expr]] = {"year": _year, "prefecture": _prefecture}
