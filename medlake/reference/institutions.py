"""Synthetic medical institutions and how each one's front-end machine delivers data.

Hospital codes are ``H`` + the hospital's GB/T 2260 county code + a 5-digit serial (``H33010200001``); the
insurance bureau delivering settlements is ``YB330100``. Delivery habits differ per hospital: file format and
encoding, how sex and encounter type are written, and the style of local item and patient codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from medlake.reference.catalogue import ReferenceDataError, hospitals, regions

__all__ = ["ENCOUNTER_STYLES", "INSURANCE_BUREAU", "SEX_STYLES", "Institution", "institution", "institutions"]

# How a hospital writes GB/T 2261.1 sex codes '1' (male) / '2' (female) / '9' (unstated).
SEX_STYLES: dict[str, dict[str, str]] = {
    "code": {"1": "1", "2": "2", "9": "9"},
    "chinese": {"1": "男", "2": "女", "9": "未说明"},
    "letter": {"1": "M", "2": "F", "9": "U"},
}
# How a hospital writes the encounter type.
ENCOUNTER_STYLES: dict[str, dict[str, str]] = {
    "english": {"outpatient": "outpatient", "emergency": "emergency", "inpatient": "inpatient"},
    "chinese": {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院"},
    "abbrev": {"outpatient": "MZ", "emergency": "JZ", "inpatient": "ZY"},
}
_STYLE_CYCLE = (
    ("code", "english"),
    ("chinese", "chinese"),
    ("letter", "abbrev"),
    ("chinese", "english"),
    ("code", "chinese"),
)


@dataclass(frozen=True)
class Institution:
    """One data-delivering institution."""

    code: str
    name: str
    region_code: str
    level: str
    delivery_format: Literal["csv", "jsonl"]
    encoding: Literal["utf-8", "gbk"]
    sex_style: str = "code"
    encounter_style: str = "english"
    id_style: int = 0  # 0, 1 or 2: the look of patient and encounter ids

    @property
    def is_hospital(self) -> bool:
        return self.code.startswith("H")

    def sex_text(self, gb_code: str) -> str:
        return SEX_STYLES[self.sex_style][gb_code]

    def encounter_text(self, encounter_type: str) -> str:
        return ENCOUNTER_STYLES[self.encounter_style][encounter_type]


INSURANCE_BUREAU = Institution(
    code="YB330100",
    name="杭州市医疗保障局",
    region_code="330100",
    level="",
    delivery_format="csv",
    encoding="utf-8",
)


def institutions(k: int) -> list[Institution]:
    """The first ``k`` hospitals (deterministic). Beyond the shipped templates, county hospitals are derived
    from the region list (``<county>第N人民医院``)."""
    if k < 1:
        raise ReferenceDataError(f"institutions(k): k must be at least 1, got {k}")
    templates = hospitals().rows(named=True)
    region_rows = regions().filter(pl.col("province") == "浙江省").rows(named=True)
    result: list[Institution] = []
    for i in range(k):
        if i < len(templates):
            t = templates[i]
            region, name, level = t["region_code"], t["name"], t["level"]
            fmt, enc = t["delivery_format"], t["encoding"]
        else:
            r = region_rows[i % len(region_rows)]
            region = r["region_code"]
            name = f"{r['prefecture']}{r['name']}第{i // len(region_rows) + 1}人民医院"
            level = "二级乙等"
            fmt, enc = (("csv", "utf-8"), ("csv", "gbk"), ("jsonl", "utf-8"))[i % 3]
        sex_style, encounter_style = _STYLE_CYCLE[i % len(_STYLE_CYCLE)]
        result.append(
            Institution(
                code=f"H{region}{i + 1:05d}",
                name=name,
                region_code=region,
                level=level,
                delivery_format=fmt,
                encoding=enc,
                sex_style=sex_style,
                encounter_style=encounter_style,
                id_style=i % 3,
            )
        )
    return result


def institution(code: str) -> Institution:
    """Look up a synthetic institution by code (its last five digits are its serial), or the insurance bureau."""
    if code == INSURANCE_BUREAU.code:
        return INSURANCE_BUREAU
    serial = code[-5:]
    if len(code) == 12 and code.startswith("H") and serial.isdigit() and int(serial) > 0:
        found = institutions(int(serial))[-1]
        if found.code == code:
            return found
    raise ReferenceDataError(f"unknown institution code {code!r}")
