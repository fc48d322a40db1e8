"""Persons (the truth) and their patient registrations at hospitals (what hospitals hold), vectorized.

A person may be registered at several hospitals, each with its own patient_id; secondary registrations differ
realistically from the truth (name typo or pinyin spelling, transposed ID or phone digits, legacy 15-digit ID,
changed phone, missing fields). Twins share birth date, region and address but not names or ID numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from pypinyin import lazy_pinyin

from medlake.identifiers import CHECK_CHARS
from medlake.reference import Institution, given_name_chars, regions, streets, surnames
from medlake.synth.config import SynthConfig, SynthConfigError

__all__ = ["Population", "build_population", "id_numbers"]

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list(CHECK_CHARS))
_PHONE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        134,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        153,
        155,
        156,
        157,
        158,
        159,
        166,
        173,
        176,
        177,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        198,
        199,
    ]
)
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Population:
    """``persons``: one row per person (truth). ``registrations``: one row per (hospital, patient_id) with the
    values the hospital holds; ``reg_weight`` is the visit propensity used to draw encounters."""

    persons: pl.DataFrame
    registrations: pl.DataFrame
    twins: pl.DataFrame


def id_numbers(region: np.ndarray, yyyymmdd: np.ndarray, seq: np.ndarray) -> pl.Series:
    """18-digit GB 11643 numbers with correct check characters, computed on whole arrays."""
    first17 = region.astype(np.int64) * 10**11 + yyyymmdd.astype(np.int64) * 1000 + seq.astype(np.int64)
    powers = 10 ** np.arange(16, -1, -1, dtype=np.int64)
    digits = (first17[:, None] // powers) % 10
    check = _CHECK[(digits @ _WEIGHTS) % 11]
    return pl.Series(first17).cast(pl.Utf8).str.zfill(17) + pl.Series(check)


def _weighted(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _birth_dates(rng: np.random.Generator, n: int, start: date) -> np.ndarray:
    """Days since 1970 of birth dates: children, adults, elderly in realistic proportions."""
    group = rng.choice(3, size=n, p=[0.16, 0.58, 0.26])
    age_years = np.where(
        group == 0, rng.uniform(0, 15, n), np.where(group == 1, rng.uniform(15, 65, n), rng.uniform(65, 98, n))
    )
    start_day = (start - _EPOCH).days
    return (start_day - age_years * 365.25).astype(np.int64)


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    d = pl.Series(days).cast(pl.Date)
    return d.dt.to_string("%Y%m%d").cast(pl.Int64).to_numpy()


def _unique_sequences(rng: np.random.Generator, region: np.ndarray, ymd: np.ndarray, seq: np.ndarray) -> None:
    """Bump sequences (keeping sex parity) until every (region, birth, seq) is unique, in place."""
    for _ in range(50):
        key = pl.DataFrame({"r": region, "b": ymd, "s": seq})
        dup = key.select(pl.int_range(pl.len()).over("r", "b", "s") > 0).to_series().to_numpy()
        if not dup.any():
            return
        seq[dup] = (seq[dup] + 2 * rng.integers(1, 40, dup.sum())) % 1000
    raise SynthConfigError("too many persons for the birth-date × region space: ID numbers would repeat")


def _names(rng: np.random.Generator, sex: np.ndarray, n: int) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Surname, given name and the index of the first given character (for typos)."""
    sn = surnames()
    chars = given_name_chars()
    s_idx = _weighted(rng, sn["weight"].to_numpy(), n)
    pools = {
        "1": np.flatnonzero(chars["sex"].is_in(["M", "U"]).to_numpy()),
        "2": np.flatnonzero(chars["sex"].is_in(["F", "U"]).to_numpy()),
    }
    w = chars["weight"].to_numpy()
    first = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    for code, pool in pools.items():
        mask = sex == code
        m = int(mask.sum())
        first[mask] = pool[_weighted(rng, w[pool], m)]
        second[mask] = pool[_weighted(rng, w[pool], m)]
    two = rng.random(n) < 0.72
    char_s = chars["char"]
    given = char_s.gather(first) + pl.Series(np.where(two, char_s.gather(second).to_numpy(), ""))
    return sn["surname"].gather(s_idx), given, first


def _phones(rng: np.random.Generator, n: int) -> pl.Series:
    prefix = _PHONE_PREFIXES[rng.integers(0, len(_PHONE_PREFIXES), n)]
    return pl.Series(prefix * 10**8 + rng.integers(0, 10**8, n)).cast(pl.Utf8)


def _addresses(rng: np.random.Generator, region_idx: np.ndarray) -> pl.Series:
    reg = regions()
    st = streets()["street"]
    prov = reg["province"].gather(region_idx)
    pref = reg["prefecture"].gather(region_idx)
    county = reg["name"].gather(region_idx)
    n = len(region_idx)
    head = pl.Series(np.where((prov == pref).to_numpy(), "", prov.to_numpy()))
    frame = pl.DataFrame(
        {
            "head": head,
            "pref": pref,
            "county": county,
            "street": st.gather(rng.integers(0, len(st), n)),
            "no": rng.integers(1, 400, n),
            "bld": rng.integers(1, 30, n),
            "unit": rng.integers(1, 6, n),
            "room": rng.integers(1, 33, n) * 100 + rng.integers(1, 5, n),
        }
    )
    return frame.select(
        pl.format("{}{}{}{}{}号{}幢{}单元{}室", "head", "pref", "county", "street", "no", "bld", "unit", "room")
    ).to_series()


def _transpose_adjacent(values: pl.Series, position: np.ndarray) -> pl.Series:
    """Swap the characters at ``position`` and ``position + 1``."""
    frame = pl.DataFrame({"v": values, "p": position})
    v, p = pl.col("v"), pl.col("p")
    return frame.select(
        pl.concat_str(v.str.slice(0, p), v.str.slice(p + 1, 1), v.str.slice(p, 1), v.str.slice(p + 2))
    ).to_series()


def _pinyin_spelling(rng: np.random.Generator, surname: pl.Series, given: pl.Series) -> pl.Series:
    """The name as a hospital clerk might type it in pinyin: 'Zhang Wei', 'ZHANG WEI' or 'zhangwei'."""
    surname_py = dict(zip(surnames()["surname"].to_list(), surnames()["pinyin"].to_list(), strict=True))
    chars = given_name_chars()["char"].to_list()
    char_py = {c: lazy_pinyin(c)[0] for c in chars}
    s_py = surname.replace_strict(surname_py, default="")
    g_py = given.str.split("").list.eval(pl.element().replace_strict(char_py, default="")).list.join("")
    style = rng.integers(0, 3, len(surname))
    frame = pl.DataFrame({"s": s_py, "g": g_py, "style": style})
    s, g = pl.col("s"), pl.col("g")
    return frame.select(
        pl.when(pl.col("style") == 0)
        .then(pl.concat_str(s.str.to_titlecase(), pl.lit(" "), g.str.to_titlecase()))
        .when(pl.col("style") == 1)
        .then(pl.concat_str(s, pl.lit(" "), g).str.to_uppercase())
        .otherwise(pl.concat_str(s, g))
    ).to_series()


def _typo(rng: np.random.Generator, surname: pl.Series, given: pl.Series) -> pl.Series:
    """Replace one given-name character by a same-sounding one when there is one, else by another character."""
    chars = given_name_chars()["char"].to_list()
    by_sound: dict[str, list[str]] = {}
    for c in chars:
        by_sound.setdefault(lazy_pinyin(c)[0], []).append(c)
    swap = {}
    for c in chars:
        mates = [m for m in by_sound[lazy_pinyin(c)[0]] if m != c]
        swap[c] = mates[0] if mates else chars[(chars.index(c) + 7) % len(chars)]
    pos = (rng.random(len(given)) * given.str.len_chars().to_numpy()).astype(np.int64)
    frame = pl.DataFrame({"s": surname, "g": given, "p": pos})
    g, p = pl.col("g"), pl.col("p")
    return frame.select(
        pl.concat_str(
            pl.col("s"), g.str.slice(0, p), g.str.slice(p, 1).replace_strict(swap, default="文"), g.str.slice(p + 1)
        )
    ).to_series()


def _persons(rng: np.random.Generator, config: SynthConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = config.patients
    reg = regions()
    home_weight = np.where(reg["province"].to_numpy() == "浙江省", 1.0, 0.15)
    region_idx = _weighted(rng, home_weight, n)
    birth = _birth_dates(rng, n, config.start_date)
    seq = rng.integers(0, 1000, n)
    address = _addresses(rng, region_idx).to_numpy().astype(object)
    # Twins: person i copies birth date, region and address of person i-1 (never chained).
    twin = np.zeros(n, dtype=bool)
    if n > 1:
        twin[1:] = rng.random(n - 1) < config.twin_share
        twin[1:] &= ~twin[:-1]
    src = np.flatnonzero(twin) - 1
    dst = np.flatnonzero(twin)
    birth[dst], region_idx[dst], address[dst] = birth[src], region_idx[src], address[src]
    seq[dst] = (seq[src] + rng.integers(1, 3, len(dst))) % 1000
    region_code = reg["region_code"].gather(region_idx).cast(pl.Int64).to_numpy()
    ymd = _yyyymmdd(birth)
    _unique_sequences(rng, region_code, ymd, seq)
    sex = np.where(seq % 2 == 1, "1", "2")
    surname, given, _ = _names(rng, sex, n)
    surname_np = surname.to_numpy().astype(object)
    surname_np[dst] = surname_np[src]
    surname = pl.Series(surname_np, dtype=pl.Utf8)
    person_no = np.arange(n, dtype=np.int64)
    persons = pl.DataFrame(
        {
            "person_id": pl.Series(person_no).cast(pl.Utf8).str.zfill(9).str.replace(r"^", "PS"),
            "surname": surname,
            "given_name": given,
            "id_number": id_numbers(region_code, ymd, seq),
            "sex_code": sex,
            "birth_date": pl.Series(birth).cast(pl.Date),
            "phone": _phones(rng, n),
            "region_code": reg["region_code"].gather(region_idx),
            "address": pl.Series(address, dtype=pl.Utf8),
            "insured": rng.random(n) < config.insured_share,
            "psn_no": pl.Series((person_no * 7_919_000_003 + 12_345_678) % 10**14)
            .cast(pl.Utf8)
            .str.zfill(14)
            .str.replace(r"^", "330100"),
            "propensity": rng.gamma(1.2, 1.0, n) * (1.0 + (birth < (config.start_date - _EPOCH).days - 60 * 365)),
        }
    ).with_columns(name=pl.col("surname") + pl.col("given_name"))
    twins = pl.DataFrame(
        {"person_id_a": persons["person_id"].gather(src), "person_id_b": persons["person_id"].gather(dst)}
    )
    return persons, twins


def _registration_index(rng: np.random.Generator, config: SynthConfig, hospitals: list[Institution]) -> pl.DataFrame:
    """(person_idx, inst_idx, primary) for every registration; at most three distinct hospitals per person."""
    n, k = config.patients, len(hospitals)
    size = np.array([2.0 if inst.level.startswith("三级") else 1.0 for inst in hospitals])
    home = _weighted(rng, size, n)
    people = np.arange(n)
    parts = [pl.DataFrame({"person_idx": people, "inst_idx": home, "primary": np.ones(n, dtype=bool)})]
    if k > 1:
        multi = rng.random(n) < config.multi_registration
        extra1 = (home + 1 + rng.integers(0, k - 1, n)) % k
        parts.append(
            pl.DataFrame(
                {
                    "person_idx": people[multi],
                    "inst_idx": extra1[multi],
                    "primary": np.zeros(int(multi.sum()), dtype=bool),
                }
            )
        )
        if k > 2:
            third = multi & (rng.random(n) < 0.25)
            extra2 = (home + 1 + rng.integers(0, k - 1, n)) % k
            third &= extra2 != extra1
            parts.append(
                pl.DataFrame(
                    {
                        "person_idx": people[third],
                        "inst_idx": extra2[third],
                        "primary": np.zeros(int(third.sum()), dtype=bool),
                    }
                )
            )
    return pl.concat(parts).sort("person_idx", "primary", descending=[False, True])


def _patient_ids(rng: np.random.Generator, inst_idx: np.ndarray, hospitals: list[Institution]) -> pl.Series:
    order = rng.permutation(len(inst_idx))
    frame = pl.DataFrame({"inst": inst_idx, "order": np.argsort(order)})
    rank = frame.select(pl.col("order").rank("ordinal").over("inst")).to_series().to_numpy().astype(np.int64)
    offset = rng.integers(100_000, 900_000, len(hospitals))[inst_idx]
    number = pl.Series(offset + rank).cast(pl.Utf8)
    style = np.array([h.id_style for h in hospitals])[inst_idx]
    tail = pl.Series([h.code[-3:] for h in hospitals]).gather(inst_idx)
    frame = pl.DataFrame({"n": number, "style": style, "tail": tail})
    n = pl.col("n")
    return frame.select(
        pl.when(pl.col("style") == 0)
        .then(n.str.zfill(10))
        .when(pl.col("style") == 1)
        .then(pl.concat_str(pl.lit("P"), n.str.zfill(8)))
        .otherwise(pl.concat_str(pl.col("tail"), pl.lit("-"), n.str.zfill(7)))
    ).to_series()


def _draw(rng: np.random.Generator, n: int, primary: np.ndarray, p_primary: float, p_other: float) -> np.ndarray:
    return rng.random(n) < np.where(primary, p_primary, p_other)


def build_population(config: SynthConfig, hospitals: list[Institution], rng: np.random.Generator) -> Population:
    persons, twins = _persons(rng, config)
    idx = _registration_index(rng, config, hospitals)
    person_idx = idx["person_idx"].to_numpy()
    primary = idx["primary"].to_numpy()
    n = len(person_idx)
    p = persons[person_idx]
    born_1900s = (p["birth_date"].dt.year() < 2000).to_numpy()
    # Variants of the hospital's record versus the truth (one draw per kind and record).
    typo = _draw(rng, n, primary, 0.004, 0.08)
    pinyin = _draw(rng, n, primary, 0.0, 0.04) & ~typo
    legacy = _draw(rng, n, primary, 0.03, 0.12) & born_1900s
    transposed_id = _draw(rng, n, primary, 0.002, 0.05) & ~legacy
    missing_id = _draw(rng, n, primary, 0.02, 0.06) & ~legacy & ~transposed_id
    phone_changed = _draw(rng, n, primary, 0.0, 0.15)
    transposed_phone = _draw(rng, n, primary, 0.002, 0.04) & ~phone_changed
    missing_phone = _draw(rng, n, primary, 0.03, 0.06) & ~phone_changed & ~transposed_phone
    missing_address = _draw(rng, n, primary, 0.03, 0.10)
    missing_birth = _draw(rng, n, primary, 0.01, 0.03)

    id18 = p["id_number"]
    id_pos = rng.integers(0, 16, n)
    same = (
        pl.DataFrame({"v": id18, "p": id_pos})
        .select(pl.col("v").str.slice(pl.col("p"), 1) == pl.col("v").str.slice(pl.col("p") + 1, 1))
        .to_series()
        .to_numpy()
    )
    transposed_id &= ~same
    id_text = (
        pl.DataFrame(
            {
                "v": id18,
                "legacy": id18.str.slice(0, 6) + id18.str.slice(8, 9),
                "swapped": _transpose_adjacent(id18, id_pos),
            }
        )
        .select(
            pl.when(pl.Series(legacy))
            .then(pl.col("legacy"))
            .when(pl.Series(transposed_id))
            .then(pl.col("swapped"))
            .when(pl.Series(missing_id))
            .then(None)
            .otherwise(pl.col("v"))
        )
        .to_series()
    )
    phone_text = (
        pl.DataFrame(
            {
                "v": p["phone"],
                "new": _phones(rng, n),
                "swapped": _transpose_adjacent(p["phone"], rng.integers(3, 10, n)),
            }
        )
        .select(
            pl.when(pl.Series(phone_changed))
            .then(pl.col("new"))
            .when(pl.Series(transposed_phone))
            .then(pl.col("swapped"))
            .when(pl.Series(missing_phone))
            .then(None)
            .otherwise(pl.col("v"))
        )
        .to_series()
    )
    name_text = (
        pl.DataFrame(
            {
                "v": p["name"],
                "typo": _typo(rng, p["surname"], p["given_name"]),
                "py": _pinyin_spelling(rng, p["surname"], p["given_name"]),
            }
        )
        .select(
            pl.when(pl.Series(typo))
            .then(pl.col("typo"))
            .when(pl.Series(pinyin))
            .then(pl.col("py"))
            .otherwise(pl.col("v"))
        )
        .to_series()
    )
    variant_flags = {
        "name_typo": typo,
        "name_pinyin": pinyin,
        "id_legacy_15": legacy,
        "id_transposed": transposed_id,
        "id_missing": missing_id,
        "phone_changed": phone_changed,
        "phone_transposed": transposed_phone,
        "phone_missing": missing_phone,
        "address_missing": missing_address,
        "birth_missing": missing_birth,
    }
    variants = (
        pl.DataFrame(variant_flags)
        .select(
            pl.concat_list([pl.when(pl.col(k)).then(pl.lit(k)) for k in variant_flags]).list.drop_nulls().list.join(";")
        )
        .to_series()
    )
    inst_idx = idx["inst_idx"].to_numpy()
    registrations = pl.DataFrame(
        {
            "person_idx": person_idx,
            "inst_idx": inst_idx,
            "primary": primary,
            "institution_code": pl.Series([h.code for h in hospitals]).gather(inst_idx),
            "patient_id": _patient_ids(rng, inst_idx, hospitals),
            "person_id": p["person_id"],
            "name": name_text,
            "id_number": id_text,
            "sex_code": p["sex_code"],
            "birth_date": pl.Series(
                np.where(missing_birth, None, p["birth_date"].dt.to_string("%Y-%m-%d").to_numpy()), dtype=pl.Utf8
            ),
            "phone": phone_text,
            "region_code": p["region_code"],
            "address": pl.Series(np.where(missing_address, None, p["address"].to_numpy()), dtype=pl.Utf8),
            "variants": variants,
            "reg_weight": p["propensity"] * np.where(primary, 1.0, 0.35),
        }
    )
    return Population(persons=persons.drop("propensity"), registrations=registrations, twins=twins)
