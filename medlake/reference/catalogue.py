"""Loaders for the small reference files shipped in ``medlake/reference/data`` (all codes kept as text).

Each loader returns a polars DataFrame with the columns documented below; results are cached, so callers must
not mutate them (polars frames are immutable anyway).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

from medlake.errors import MedlakeError

__all__ = [
    "ReferenceDataError",
    "departments",
    "drugs",
    "given_name_chars",
    "hospitals",
    "icd10",
    "lab_tests",
    "regions",
    "service_items",
    "streets",
    "surnames",
]


class ReferenceDataError(MedlakeError):
    """A shipped reference file is missing or malformed, or a code is not in the reference data."""


_NUMERIC: dict[str, dict[str, type[pl.DataType] | pl.DataType]] = {
    "surnames.csv": {"weight": pl.Float64},
    "given_chars.csv": {"weight": pl.Float64},
    "icd10.csv": {"weight": pl.Float64},
    "drugs.csv": {"price": pl.Decimal(18, 2)},
    "service_items.csv": {"price": pl.Decimal(18, 2)},
    "lab_tests.csv": {"ref_low": pl.Float64, "ref_high": pl.Float64, "decimals": pl.Int32},
    "departments.csv": {"weight": pl.Float64},
}


@cache
def _load(file: str) -> pl.DataFrame:
    path = resources.files("medlake.reference") / "data" / file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReferenceDataError(f"reference file medlake/reference/data/{file} is missing") from None
    frame = pl.read_csv(raw, infer_schema=False)
    casts = _NUMERIC.get(file, {})
    missing = set(casts) - set(frame.columns)
    if missing:
        raise ReferenceDataError(f"medlake/reference/data/{file}: missing columns {sorted(missing)}")
    try:
        return frame.with_columns(pl.col(c).cast(t) for c, t in casts.items())
    except pl.exceptions.InvalidOperationError as exc:
        raise ReferenceDataError(f"medlake/reference/data/{file}: non-numeric value ({exc})") from None


def surnames() -> pl.DataFrame:
    """surname, pinyin (the surname reading, which differs from the common reading for e.g. 单 shan), weight."""
    return _load("surnames.csv")


def given_name_chars() -> pl.DataFrame:
    """char, sex (M / F / U = either), weight."""
    return _load("given_chars.csv")


def regions() -> pl.DataFrame:
    """Real GB/T 2260 county-level codes: region_code, name, prefecture, province."""
    return _load("regions.csv")


def icd10() -> pl.DataFrame:
    """ICD-10 subset: code, name (Chinese), chapter, weight (relative frequency), notifiable (甲类/乙类/丙类 or '')."""
    return _load("icd10.csv").with_columns(pl.col("notifiable").fill_null(""))


def drugs() -> pl.DataFrame:
    """National drug catalogue subset: national_code (23 chars), name, dosage_form, spec, price, brand, kind."""
    return _load("drugs.csv").with_columns(pl.col("brand").fill_null(""))


def service_items() -> pl.DataFrame:
    """National medical service items: national_code (9 digits), name, unit, price, category."""
    return _load("service_items.csv")


def lab_tests() -> pl.DataFrame:
    """Lab tests: test_code (LOINC), name, unit, ref_low, ref_high, decimals, panel."""
    return _load("lab_tests.csv")


def departments() -> pl.DataFrame:
    """Clinical departments: dept_code, dept_name, encounter_type (outpatient/emergency/inpatient), weight."""
    return _load("departments.csv")


def hospitals() -> pl.DataFrame:
    """Hospital templates: region_code, name, level, delivery_format (csv/jsonl), encoding (utf-8/gbk)."""
    return _load("hospitals.csv")


def streets() -> pl.DataFrame:
    """Street names used to compose addresses: street."""
    return _load("streets.csv")
