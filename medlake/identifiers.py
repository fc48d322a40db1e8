"""GB 11643-1999 citizen ID numbers: check digit, validation, 15→18 upgrade, and what the number encodes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from medlake.errors import IdentifierError

__all__ = [
    "CHECK_CHARS",
    "CHECK_WEIGHTS",
    "IdNumber",
    "check_char",
    "is_valid_id_number",
    "normalize_id_number",
    "parse_id_number",
    "upgrade_15_to_18",
]

CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # ISO 7064 MOD 11-2: remainder 0..10 → check character
_RE_18 = re.compile(r"^\d{17}[\dX]$")
_RE_15 = re.compile(r"^\d{15}$")


def check_char(first17: str) -> str:
    """The check character for the first 17 digits of an 18-digit ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise IdentifierError(f"expected 17 digits, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, CHECK_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def upgrade_15_to_18(legacy: str) -> str:
    """Upgrade a legacy 15-digit number (YYMMDD, no check) to 18 digits (19YYMMDD + check)."""
    if not _RE_15.match(legacy):
        raise IdentifierError(f"not a 15-digit legacy ID number: {legacy!r}")
    first17 = legacy[:6] + "19" + legacy[6:]
    return first17 + check_char(first17)


def _birth_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def normalize_id_number(raw: str | None) -> str | None:
    """Trim, upper-case a trailing ``x``, full-width digits to ASCII, and upgrade 15 digits to 18.

    Returns None for an empty value; returns the cleaned string even when it is invalid (validation is separate).
    """
    if raw is None:
        return None
    text = raw.strip().translate(_FULLWIDTH).upper().replace(" ", "")
    if not text:
        return None
    if _RE_15.match(text) and _birth_date("19" + text[6:12]) is not None:
        return upgrade_15_to_18(text)
    return text


_FULLWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")


def is_valid_id_number(value: str | None) -> bool:
    """True for an 18-character number with a real birth date and a correct check character."""
    if not value or not _RE_18.match(value):
        return False
    if _birth_date(value[6:14]) is None:
        return False
    return check_char(value[:17]) == value[17]


@dataclass(frozen=True)
class IdNumber:
    """What an 18-digit ID number encodes."""

    number: str
    region_code: str
    birth_date: date
    sequence: str

    @property
    def sex_code(self) -> str:
        """GB/T 2261.1 sex code: odd sequence → 1 male, even → 2 female."""
        return "1" if int(self.sequence[-1]) % 2 == 1 else "2"


def parse_id_number(raw: str) -> IdNumber:
    """Parse (after normalization) a valid ID number, or raise IdentifierError saying what is wrong."""
    value = normalize_id_number(raw)
    if value is None:
        raise IdentifierError("empty ID number")
    if not _RE_18.match(value):
        raise IdentifierError(f"{raw!r}: expected 18 characters (17 digits + digit or X) or 15 digits")
    born = _birth_date(value[6:14])
    if born is None:
        raise IdentifierError(f"{raw!r}: {value[6:14]} is not a calendar date")
    expected = check_char(value[:17])
    if expected != value[17]:
        raise IdentifierError(f"{raw!r}: check character is {value[17]}, expected {expected}")
    return IdNumber(number=value, region_code=value[:6], birth_date=born, sequence=value[14:17])
