"""Injected data defects, applied to delivered text rows and recorded in the truth.

Each row gets at most one defect, drawn with the per-type rates of ``DefectRates``; every type has a few concrete
forms per table (e.g. ``impossible_date`` on encounter = discharge before admission or 2026-02-30). A form that
does not apply to a row (e.g. discharge before admission on a row without discharge time) leaves the row clean,
so the truth lists exactly what was changed. Line-level defects (wrong field count, undecodable bytes) are made
by the writer, which also records them here via ``truth_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from medlake.sources import source
from medlake.synth.config import DefectRates

__all__ = ["DEFECT_TRUTH_SCHEMA", "Defected", "inject_defects", "key_expr", "truth_frame"]

DEFECT_TRUTH_SCHEMA = {
    "table": pl.Utf8,
    "institution_code": pl.Utf8,
    "key": pl.Utf8,
    "field": pl.Utf8,
    "defect_type": pl.Utf8,
    "business_date": pl.Date,
}
_ROW_TYPES = ("missing_required", "invalid_code", "impossible_date", "out_of_range", "duplicate", "contradiction")
_FLIP_SEX = {"1": "2", "2": "1", "男": "女", "女": "男", "M": "F", "F": "M"}

# A form: (field, eligibility, new value). Both expressions are evaluated on the clean rows.
Form = tuple[str, pl.Expr, pl.Expr]


@dataclass(frozen=True)
class Defected:
    rows: pl.DataFrame
    truth: pl.DataFrame


def key_expr(table: str) -> pl.Expr:
    """The business key of a row as one text (``a|b`` for composite keys), nulls as empty."""
    cols = source(table).business_key
    return pl.concat_str([pl.col(c).fill_null("") for c in cols], separator="|")


def truth_frame(rows: pl.DataFrame, table: str, field: str, defect_type: str, business_date: date) -> pl.DataFrame:
    """Truth records for ``rows`` (clean values, so the key is the one the row should have had)."""
    return rows.select(
        pl.lit(table).alias("table"),
        pl.col("_inst").alias("institution_code"),
        key_expr(table).alias("key"),
        pl.lit(field).alias("field"),
        pl.lit(defect_type).alias("defect_type"),
        pl.lit(business_date).alias("business_date"),
    )


def _feb30(column: str) -> pl.Expr:
    c = pl.col(column)
    return pl.concat_str(c.str.slice(0, 4), pl.lit("-02-30"), c.str.slice(10))


def _nudged_day(column: str) -> pl.Expr:
    """Same month, a neighbouring day (always a real calendar date)."""
    c = pl.col(column)
    d = c.str.slice(8, 2).cast(pl.Int32, strict=False)
    new = pl.when(d < 28).then(d + 1).otherwise(d - 1).cast(pl.Utf8).str.zfill(2)
    return pl.concat_str(c.str.slice(0, 8), new, c.str.slice(10))


def _plus(column: str, amount: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Decimal(18, 2), strict=False) + pl.lit(amount).cast(pl.Decimal(18, 2))).cast(pl.Utf8)


def _negative(column: str) -> pl.Expr:
    return pl.concat_str(pl.lit("-"), pl.col(column))


def _present(*columns: str) -> pl.Expr:
    return pl.all_horizontal([pl.col(c).is_not_null() & (pl.col(c) != "") for c in columns])


def _shifted_datetime(column: str, by: str) -> pl.Expr:
    return (
        pl.col(column)
        .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
        .dt.offset_by(by)
        .dt.strftime("%Y-%m-%d %H:%M:%S")
    )


def _forms(table: str, business_date: date) -> dict[str, list[Form]]:
    """The concrete forms each defect type takes in ``table``."""
    spec = source(table)
    always = pl.lit(True)
    forms: dict[str, list[Form]] = {
        "missing_required": [(c.name, _present(c.name), pl.lit(None, pl.Utf8)) for c in spec.columns if c.required],
        "duplicate": [("", always, always)],
    }
    future = (business_date + timedelta(days=200)).isoformat()
    ancient = business_date.replace(year=business_date.year - 150, day=min(business_date.day, 28)).isoformat()
    specific: dict[str, dict[str, list[Form]]] = {
        "patient": {
            "invalid_code": [
                ("region_code", _present("region_code"), pl.lit("339999")),
                ("sex_code", always, pl.lit("X")),
            ],
            "impossible_date": [
                ("birth_date", _present("birth_date"), pl.lit(future)),
                ("birth_date", _present("birth_date"), _feb30("birth_date")),
            ],
            "out_of_range": [("birth_date", _present("birth_date"), pl.lit(ancient))],
            "contradiction": [
                (
                    "sex_code",
                    _present("id_number", "sex_code") & pl.col("sex_code").is_in(list(_FLIP_SEX)),
                    pl.col("sex_code").replace(_FLIP_SEX),
                ),
                ("birth_date", _present("id_number", "birth_date"), _nudged_day("birth_date")),
            ],
        },
        "encounter": {
            "invalid_code": [("encounter_type", always, pl.lit("其他"))],
            "impossible_date": [
                ("discharge_time", _present("discharge_time"), _shifted_datetime("admit_time", "-3h")),
                ("admit_time", always, _feb30("admit_time")),
            ],
        },
        "diagnosis": {
            "invalid_code": [
                ("diag_code", always, pl.concat_str(pl.lit("0"), pl.col("diag_code"))),
                (
                    "diag_code",
                    always,
                    pl.concat_str(pl.col("diag_code").str.slice(0, 1), pl.lit("9"), pl.col("diag_code").str.slice(1)),
                ),
            ],
            "impossible_date": [("diag_time", _present("diag_time"), _feb30("diag_time"))],
            "out_of_range": [("diag_seq", always, pl.lit("-1"))],
        },
        "order_item": {
            "invalid_code": [("local_item_code", always, pl.concat_str(pl.lit("ZZ"), pl.col("local_item_code")))],
            "impossible_date": [("order_time", _present("order_time"), _feb30("order_time"))],
            "out_of_range": [
                ("amount", _present("amount"), _negative("amount")),
                ("quantity", _present("quantity"), _negative("quantity")),
            ],
            "contradiction": [("amount", _present("amount", "quantity", "unit_price"), _plus("amount", "10"))],
        },
        "lab_result": {
            "invalid_code": [("test_code", always, pl.concat_str(pl.col("test_code"), pl.lit("-X")))],
            "impossible_date": [("report_time", _present("report_time"), _feb30("report_time"))],
            "out_of_range": [("result_value", _present("result_value"), _negative("result_value"))],
        },
        "settlement": {
            "invalid_code": [("setl_status", always, pl.lit("9")), ("medins_code", always, pl.lit("H99999999999"))],
            "impossible_date": [("setl_time", always, _feb30("setl_time"))],
            "out_of_range": [("total_amount", always, _negative("total_amount"))],
            "contradiction": [("fund_paid", always, _plus("total_amount", "100"))],
        },
    }
    forms.update(specific.get(table, {}))
    return forms


def inject_defects(
    rows: pl.DataFrame, table: str, rates: DefectRates, rng: np.random.Generator, business_date: date
) -> Defected:
    """Apply row-level defects to one day's delivered rows of ``table`` (columns: spec columns + ``_inst``)."""
    empty = pl.DataFrame(schema=DEFECT_TRUTH_SCHEMA)
    n = rows.height
    if n == 0:
        return Defected(rows, empty)
    forms = _forms(table, business_date)
    rate = rates.as_dict()
    u = rng.random(n)
    pick = rng.integers(0, 1 << 30, n)
    lower = 0.0
    updates: dict[str, pl.Expr] = {}
    truths: list[pl.DataFrame] = []
    duplicate_mask = np.zeros(n, dtype=bool)
    for kind in _ROW_TYPES:
        upper = lower + rate[kind]
        chosen = (u >= lower) & (u < upper)
        lower = upper
        if kind not in forms or not chosen.any():
            continue
        options = forms[kind]
        names = [f"_eligible{i}" for i in range(len(options))]
        eligible = rows.with_columns(e.fill_null(False).alias(nm) for nm, (_, e, _) in zip(names, options, strict=True))
        for j, (field, _, value) in enumerate(options):
            mask = chosen & (pick % len(options) == j) & eligible[names[j]].to_numpy()
            if not mask.any():
                continue
            hit = rows.filter(pl.Series(mask))
            truths.append(truth_frame(hit, table, field, kind, business_date))
            if kind == "duplicate":
                duplicate_mask |= mask
                continue
            updates[field] = pl.when(pl.lit(pl.Series(mask))).then(value).otherwise(updates.get(field, pl.col(field)))
    out = rows.with_columns(**updates) if updates else rows
    if duplicate_mask.any():
        out = out.with_row_index("_pos")
        out = pl.concat([out, out.filter(pl.Series(duplicate_mask))]).sort("_pos", maintain_order=True).drop("_pos")
    truth = pl.concat(truths).cast(DEFECT_TRUTH_SCHEMA) if truths else empty
    return Defected(out, truth)
