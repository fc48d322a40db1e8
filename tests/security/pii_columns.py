"""A labelled column set for the PII detector: synthetic deliveries (``medlake.synth``, with their injected defects)
cut into columns of ``COLUMN_ROWS`` values, plus generated columns of the types synth does not deliver (landline,
bank card, formatted mobiles, legacy 15-digit IDs) and hard negatives (order numbers, 18-digit numbers with a wrong
check digit, Luhn-invalid card-like numbers, dates, codes, hospital, drug and diagnosis names, amounts)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medlake.config import Settings
from medlake.identifiers import CHECK_CHARS, check_char
from medlake.reference import drugs, hospitals, icd10, regions, streets
from medlake.security.files import read_sample
from medlake.synth import SynthConfig, generate

__all__ = ["COLUMN_ROWS", "LabelledColumn", "labelled_columns"]

COLUMN_ROWS = 100
# Landing column → its true PII type (every other delivered column is labelled "none").
_SYNTH_LABELS = {"id_number": "id_number", "phone": "mobile", "name": "person_name", "psn_name": "person_name",
                 "address": "address", "psn_no": "insurance_number"}


@dataclass(frozen=True)
class LabelledColumn:
    name: str
    label: str  # a PiiType value or "none"
    values: list[str | None]


def _chunks(name: str, label: str, values: list[object]) -> Iterator[LabelledColumn]:
    texts = [None if v is None else str(v) for v in values]
    for start in range(0, len(texts) - COLUMN_ROWS + 1, COLUMN_ROWS):
        yield LabelledColumn(f"{name}[{start}]", label, texts[start:start + COLUMN_ROWS])


def _synth_columns(home: Path) -> list[LabelledColumn]:
    generate(SynthConfig(patients=3000, days=2, institutions=3, seed=11, history_days=2), Settings(home=home))
    merged: dict[str, list[object]] = {}
    for path in sorted(glob.glob(str(home / "landing" / "*" / "*" / "*.*"))):
        if path.endswith("manifest.json"):
            continue
        table = Path(path).stem
        for column, values in read_sample(Path(path), rows=100_000).items():
            merged.setdefault(f"{table}.{column}", []).extend(values)
    found = []
    for name, values in merged.items():
        label = _SYNTH_LABELS.get(name.split(".", 1)[1], "none")
        found += list(_chunks(f"synth:{name}", label, values))
    return found


def _with_nulls(rng: np.random.Generator, values: list[str]) -> list[str | None]:
    return [None if rng.random() < 0.05 else v for v in values]


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit doubled, digits of the product summed


def _luhn_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check (written independently of the detector's)."""
    total = sum(_DOUBLED[int(c)] if i % 2 == 0 else int(c) for i, c in enumerate(reversed(body)))
    return str(-total % 10)


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _id_body(rng: np.random.Generator) -> str:
    region = str(regions()["region_code"].sample(1, seed=int(rng.integers(1 << 30)))[0])
    year, month, day = int(rng.integers(1930, 2020)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    return f"{region}{year}{month:02d}{day:02d}{_digits(rng, 3)}"


def _generated(rng: np.random.Generator) -> dict[str, list[str]]:
    """One column's values per kind (called once per column)."""
    n = COLUMN_ROWS
    area = ["010", "021", "022", "023", "020", "025", "027", "028", "029", "0571", "0574", "0755", "0512", "0731"]
    landline = []
    for _ in range(n):
        code = area[int(rng.integers(len(area)))]
        local = str(int(rng.integers(2, 10))) + _digits(rng, 7 if len(code) == 3 else int(rng.integers(6, 8)))
        style = int(rng.integers(4))
        landline.append([f"{code}-{local}", f"({code}){local}", f"{code}{local}",
                         f"{code}-{local}-{rng.integers(100, 999)}"][style])
    bins = ["622202", "621700", "622848", "621226", "625800", "436742", "518710", "603367"]
    cards = []
    for _ in range(n):
        body = bins[int(rng.integers(len(bins)))] + _digits(rng, int(rng.integers(10, 13)))
        card = body + _luhn_digit(body)
        cards.append(" ".join(card[i:i + 4] for i in range(0, len(card), 4)) if rng.random() < 0.2 else card)
    mobiles = []
    for _ in range(n):
        number = "1" + str(int(rng.integers(3, 10))) + _digits(rng, 9)
        mobiles.append(rng.choice([number, f"+86{number}", f"{number[:3]}-{number[3:7]}-{number[7:]}",
                                   f"{number[:3]} {number[3:7]} {number[7:]}"]))
    legacy = [(b := _id_body(rng))[:6] + b[8:14] + b[14:] for _ in range(n)]
    bad_check = []  # valid region and birth date, any check character but the right one
    for _ in range(n):
        first17 = _id_body(rng)
        right = CHECK_CHARS.index(check_char(first17))
        bad_check.append(first17 + CHECK_CHARS[(right + int(rng.integers(1, 11))) % 11])
    names = hospitals()["name"].to_list() + drugs()["name"].to_list() + icd10()["name"].to_list()
    return {
        "landline": landline,
        "bank_card": cards,
        "mobile": [str(m) for m in mobiles],
        "id_number": legacy,
        "none:bad_check_id": bad_check,
        "none:order_no": [f"DD2026{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{_digits(rng, 8)}"
                          for _ in range(n)],
        "none:numeric_order_no": [f"2026{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}{_digits(rng, 12)}"
                                  for _ in range(n)],
        "none:serial_11": ["1" + str(int(rng.integers(0, 3))) + _digits(rng, 9) for _ in range(n)],
        "none:card_like_bad_luhn": [(b := "62" + _digits(rng, 15)) + str((int(_luhn_digit(b)) + 1) % 10)
                                    for _ in range(n)],
        "none:random_18_digits": [str(int(rng.integers(1, 10))) + _digits(rng, 17) for _ in range(n)],
        "none:dates": [f"{rng.integers(1950, 2026)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
                       for _ in range(n)],
        "none:compact_dates": [f"{rng.integers(1950, 2026)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
                               for _ in range(n)],
        "none:region_codes": [str(regions()["region_code"][int(i)]) for i in rng.integers(0, regions().height, n)],
        "none:postcodes": [f"3{_digits(rng, 5)}" for _ in range(n)],
        "none:names_of_things": [names[int(i)] for i in rng.integers(0, len(names), n)],
        "none:street_only": [str(streets()["street"][int(i)]) for i in rng.integers(0, streets().height, n)],
        "none:amounts": [f"{rng.uniform(0, 5000):.2f}" for _ in range(n)],
        "none:company": [f"{regions()['prefecture'][int(i)]}{rng.choice(['华康', '仁和', '康泰'])}医药有限公司"
                         for i in rng.integers(0, regions().height, n)],
    }


def labelled_columns(home: Path, generated_per_kind: int = 20, seed: int = 5) -> list[LabelledColumn]:
    """The synth columns plus ``generated_per_kind`` generated columns of each extra kind."""
    rng = np.random.default_rng(seed)
    columns = _synth_columns(home)
    for i in range(generated_per_kind):
        for kind, values in _generated(rng).items():
            label = "none" if kind.startswith("none:") else kind
            columns.append(LabelledColumn(f"gen:{kind}[{i}]", label, _with_nulls(rng, values)))
    return columns
