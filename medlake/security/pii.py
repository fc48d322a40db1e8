"""Chinese personal-information detector: which kind of identifier a column holds, judged from a sample of values.

Each PII type has a value test; a column's detection is the type whose test the largest share of its non-empty
sampled values pass, if that share (the hit ratio) reaches ``MIN_HIT_RATIO``. The tests validate, not just match a
shape: resident ID numbers need the GB 11643 check character, a calendar birth date and a GB/T 2260 province; bank
cards the Luhn digit and a card-scheme prefix; person names a surname and no dictionary word other than a name
(jieba's dictionary, offline).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from medlake.identifiers import is_valid_id_number, normalize_id_number
from medlake.masking.rules import COMPOUND_SURNAMES

__all__ = [
    "MIN_HIT_RATIO",
    "PII_TESTS",
    "SAMPLE_SIZE",
    "Detection",
    "PiiType",
    "detect_column",
    "detect_value",
    "is_address",
    "is_bank_card",
    "is_id_number",
    "is_insurance_number",
    "is_landline",
    "is_mobile",
    "is_person_name",
]

MIN_HIT_RATIO = 0.6
"""Share of a column's non-empty sampled values that must pass one type's test for the column to be that type."""
SAMPLE_SIZE = 1000
"""Values a column is judged on (the first non-empty ones of the sample given)."""


class PiiType(StrEnum):
    ID_NUMBER = "id_number"
    MOBILE = "mobile"
    LANDLINE = "landline"
    PERSON_NAME = "person_name"
    ADDRESS = "address"
    INSURANCE_NUMBER = "insurance_number"
    BANK_CARD = "bank_card"


# GB/T 2260 province-level codes (first two digits of a region code, an ID number, a pooling-area code).
_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
})
_SEPARATORS = re.compile(r"[\s\-]")
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")
_LANDLINE = re.compile(
    r"^(?:\(0(?:10|2\d|[3-9]\d{2})\)|0(?:10|2\d|[3-9]\d{2}))[- ]?[2-9]\d{6,7}(?:(?:-|转|#|ext\.?)\d{1,5})?$"
)
_DIGITS = re.compile(r"^\d+$")
_BANK_PREFIX = re.compile(r"^(?:6|4|5[1-5]|2[2-7]|35|9)")
_INSURANCE = re.compile(r"^(\d{2})\d{2}00\d{14}$")
_HAN = r"\u4e00-\u9fff"
_NAME = re.compile(rf"^[{_HAN}]{{2,4}}$")
_MINORITY_NAME = re.compile(rf"^[{_HAN}]{{1,8}}[·•][{_HAN}]{{1,8}}$")
_PINYIN_NAME = re.compile(r"^([A-Za-z]{1,6}) ([A-Za-z]{1,12})$")
# Characters that occur in words that look like names (a surname + 1–3 characters) but not in given names.
_NOT_IN_NAMES = frozenset("病症癌瘤痛疼药剂胶囊液颗粒丸膏注射科室院所站局厅处费检查医护患者号码"
                          "省区县镇乡村路街型性类计数率量片散醇酸钠钾酶霉醉胎蛋")
_ADMIN = re.compile(rf"[{_HAN}](?:省|自治区|市|自治州|地区|盟|区|县|旗)")
_PLACE = re.compile(rf"[{_HAN}A-Za-z0-9](?:路|街|大道|道|巷|弄|胡同|里|村|组|小区|社区|花园|苑|园)")
_NUMBERED = re.compile(r"\d+\s*(?:号|弄|室|幢|栋|单元|楼|组|层)")


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value)


def is_id_number(value: str) -> bool:
    """An 18-digit (or legacy 15-digit) resident ID number: GB 11643 check character, calendar birth date, and a
    GB/T 2260 province in the first two digits."""
    text = normalize_id_number(_compact(value))
    return bool(text) and text[:2] in _PROVINCES and is_valid_id_number(text)


def is_mobile(value: str) -> bool:
    """A mainland mobile number, 11 digits from 13x–19x, optionally +86, spaces or dashes between groups."""
    return bool(_MOBILE.match(_compact(value)))


def is_landline(value: str) -> bool:
    """A fixed-line number with its area code (010, 02x, 0xxx), e.g. ``0571-87654321``, ``(010)12345678-801``."""
    return bool(_LANDLINE.match(value.strip()))


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_bank_card(value: str) -> bool:
    """A 16–19-digit payment card number with a card-scheme prefix (UnionPay and domestic banks 6/9, Visa 4,
    Mastercard, JCB) and a correct Luhn check digit; a valid resident ID number is not a card."""
    text = _compact(value)
    return (16 <= len(text) <= 19 and bool(_DIGITS.match(text)) and bool(_BANK_PREFIX.match(text))
            and _luhn(text) and not is_id_number(text))


def is_insurance_number(value: str) -> bool:
    """A 20-digit medical-insurance personal number (NHSA 人员编号 layout): a prefecture-level pooling-area code
    (province + 2 digits + ``00``) followed by 14 digits."""
    found = _INSURANCE.match(_compact(value))
    return bool(found) and found.group(1) in _PROVINCES


@lru_cache(maxsize=1)
def _surnames() -> frozenset[str]:
    text = Path(__file__).with_name("data").joinpath("surnames.txt").read_text(encoding="utf-8")
    singles = "".join(line.strip() for line in text.splitlines() if not line.startswith("#"))
    return frozenset(singles) | frozenset(COMPOUND_SURNAMES)


@lru_cache(maxsize=1)
def _surname_pinyin() -> frozenset[str]:
    from pypinyin import lazy_pinyin

    return frozenset("".join(lazy_pinyin(s)) for s in _surnames())


@lru_cache(maxsize=1)
def _word_tags() -> dict[str, str]:
    """jieba's dictionary: word → part-of-speech tag (``nr`` person name, ``n`` noun, ``ns`` place…)."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)  # jieba logs its dictionary loading at INFO
    return jieba.posseg.dt.word_tag_tab  # type: ignore[no-any-return]


def is_person_name(value: str) -> bool:
    """A Chinese person name: 2–4 Han characters starting with a surname (or a compound surname), that jieba's
    dictionary does not know as a non-name word; minority names with a middle dot; pinyin ``Zhang Wei``."""
    text = value.strip()
    if _MINORITY_NAME.match(text):
        return True
    pinyin = _PINYIN_NAME.match(text)
    if pinyin:
        return pinyin.group(1).lower() in _surname_pinyin()
    if not _NAME.match(text) or any(c in _NOT_IN_NAMES for c in text) or text.endswith("大道"):
        return False
    surnames = _surnames()
    if not (text[:2] in surnames or text[0] in surnames):
        return False
    tag = _word_tags().get(text)
    return tag is None or tag.startswith("nr")


def is_address(value: str) -> bool:
    """A postal address: an administrative division (省/市/区/县…), a street, village or estate, and a house,
    building or room number (or a village group)."""
    text = value.strip()
    return (len(text) >= 6 and bool(_ADMIN.search(text)) and bool(_PLACE.search(text))
            and bool(_NUMBERED.search(text)))


PII_TESTS: dict[PiiType, Callable[[str], bool]] = {
    PiiType.ID_NUMBER: is_id_number,
    PiiType.MOBILE: is_mobile,
    PiiType.LANDLINE: is_landline,
    PiiType.PERSON_NAME: is_person_name,
    PiiType.ADDRESS: is_address,
    PiiType.INSURANCE_NUMBER: is_insurance_number,
    PiiType.BANK_CARD: is_bank_card,
}
"""The value test of each type, in order of precedence when two types tie on a column."""


def detect_value(value: str) -> PiiType | None:
    """The first type whose test ``value`` passes, or None."""
    return next((kind for kind, test in PII_TESTS.items() if test(value)), None)


@dataclass(frozen=True)
class Detection:
    """A column's verdict: ``pii_type`` (None when no type reaches ``MIN_HIT_RATIO``), the best type's
    ``hit_ratio`` among the ``sampled`` non-empty values, and the best type even when below the threshold."""

    pii_type: PiiType | None
    hit_ratio: float
    sampled: int = 0
    best: PiiType | None = None


def _values(values: Iterable[object]) -> list[str]:
    texts: list[str] = []
    for value in values:
        if value is None:
            continue
        text = str(value).strip()
        if text:
            texts.append(text)
            if len(texts) >= SAMPLE_SIZE:
                break
    return texts


def detect_column(values: Sequence[object] | Iterable[object], *, min_hit_ratio: float = MIN_HIT_RATIO) -> Detection:
    """Judge a column from its values (strings, or anything whose ``str`` is the value; None and blanks ignored)."""
    texts = _values(values)
    if not texts:
        return Detection(None, 0.0, 0)
    best, best_hits = None, 0
    for kind, test in PII_TESTS.items():
        hits = sum(1 for t in texts if test(t))
        if hits > best_hits:
            best, best_hits = kind, hits
    ratio = round(best_hits / len(texts), 4)
    return Detection(best if ratio >= min_hit_ratio else None, ratio, len(texts), best)
