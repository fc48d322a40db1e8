"""Each hospital's own (local) codes and names for national drugs and service items.

Hospital information systems key drugs and service items by in-house codes; the national (NHSA) codes are
attached through a mapping table that is never complete. The functions here are deterministic (they depend only
on the institution code and the reference data), so the generator, the truth files and tests agree:

* ``local_item_code`` – a per-hospital code style and a per-hospital permutation of the catalogue;
* ``local_item_name`` – the national name, or for some items a hospital variant (brand name, spec appended,
  abbreviation, full-width brackets);
* ``institution_mapping`` – the hospital's mapping table, with a deterministic ~3 % of local codes unmapped.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

import numpy as np
import polars as pl

from medlake.reference.catalogue import ReferenceDataError, drugs, service_items

__all__ = [
    "UNMAPPED_SHARE",
    "institution_catalogue",
    "institution_mapping",
    "local_item_code",
    "local_item_name",
    "national_items",
]

UNMAPPED_SHARE = 0.03
_VARIANT_SHARE = 0.4
_SALT_PREFIXES = ("盐酸", "苯磺酸", "酒石酸", "琥珀酸", "草酸", "枸橼酸", "富马酸", "硫酸氢")


def _digest(*parts: str) -> int:
    """A stable 64-bit number from text (Python's hash() is salted per process, so it is not used)."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest(), "big")


def _code_style(institution_code: str) -> int:
    serial = institution_code[-5:]
    return (int(serial) - 1) % 3 if serial.isdigit() else _digest("style", institution_code) % 3


@cache
def national_items() -> pl.DataFrame:
    """Drugs then service items: national_code, national_name, category (drug/service), spec, brand, price."""
    d = drugs().select(
        "national_code",
        pl.col("name").alias("national_name"),
        pl.lit("drug").alias("category"),
        "spec",
        "brand",
        "price",
    )
    s = service_items().select(
        "national_code",
        pl.col("name").alias("national_name"),
        pl.lit("service").alias("category"),
        pl.col("unit").alias("spec"),
        pl.lit("").alias("brand"),
        "price",
    )
    return pl.concat([d, s])


@cache
def _index() -> dict[str, int]:
    return {code: i for i, code in enumerate(national_items()["national_code"].to_list())}


@cache
def _by_name() -> dict[str, tuple[str, str]]:
    items = national_items()
    return {
        name: (spec, brand)
        for name, spec, brand in zip(
            items["national_name"].to_list(), items["spec"].to_list(), items["brand"].to_list(), strict=True
        )
    }


@cache
def _permutation(institution_code: str) -> np.ndarray:
    rng = np.random.default_rng(_digest("perm", institution_code))
    return rng.permutation(len(national_items()))


def local_item_code(institution_code: str, national_code: str) -> str:
    """The hospital's in-house code for a national drug or service item (unique within the hospital)."""
    try:
        idx = _index()[national_code]
    except KeyError:
        raise ReferenceDataError(
            f"{institution_code}: national item code {national_code!r} is not in the reference catalogue"
        ) from None
    serial = int(_permutation(institution_code)[idx])
    is_drug = national_items()["category"][idx] == "drug"
    style = _code_style(institution_code)
    if style == 0:
        return f"{'YP' if is_drug else 'ZL'}{100000 + serial * 7:06d}"
    if style == 1:
        return f"{1 if is_drug else 2}{_digest('tail', institution_code) % 90 + 10:02d}{serial:05d}"
    return f"{'Y' if is_drug else 'F'}-{institution_code[-2:]}{serial:04d}"


def _abbreviate(name: str) -> str:
    text = name
    for prefix in _SALT_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix) + 2:
            text = text[len(prefix) :]
            break
    if text.startswith("注射用"):
        text = text[3:] + "针"
    elif text.endswith("注射液"):
        text = text[:-3] + "针"
    text = re.sub(r"\(.*?\)", "", text)
    return text.removesuffix("测定") or name


def local_item_name(institution_code: str, national_name: str, spec: str | None = None) -> str:
    """The name the hospital's system shows for a national item: unchanged for most items, otherwise a
    hospital-specific variant (brand in brackets, spec appended, abbreviation, or full-width brackets)."""
    known_spec, brand = _by_name().get(national_name, ("", ""))
    spec = known_spec if spec is None else spec
    if _digest("variant", institution_code, national_name) % 1000 >= _VARIANT_SHARE * 1000:
        return national_name
    kind = (_code_style(institution_code) + _digest("kind", national_name)) % 4
    if kind == 0 and brand:
        return f"{national_name}({brand})"
    if kind == 1 and spec:
        return f"{national_name} {spec}"
    if kind == 2:
        return _abbreviate(national_name)
    if "(" in national_name:
        return national_name.replace("(", "（").replace(")", "）")
    return f"{national_name}（{spec}）" if spec else national_name


@cache
def institution_catalogue(institution_code: str) -> pl.DataFrame:
    """The hospital's full item list with the TRUE national code of every local item (used by the generator
    and the truth files): local_code, local_name, national_code, national_name, category, price, mapped."""
    items = national_items()
    codes = items["national_code"].to_list()
    names = items["national_name"].to_list()
    specs = items["spec"].to_list()
    return items.select(
        pl.Series("local_code", [local_item_code(institution_code, c) for c in codes]),
        pl.Series(
            "local_name",
            [local_item_name(institution_code, n, s) for n, s in zip(names, specs, strict=True)],
        ),
        "national_code",
        "national_name",
        "category",
        "price",
        pl.Series(
            "mapped",
            [_digest("mapped", institution_code, c) % 10_000 >= UNMAPPED_SHARE * 10_000 for c in codes],
        ),
    )


def institution_mapping(institution_code: str) -> pl.DataFrame:
    """The hospital's local→national mapping table as it would be maintained: local_code, local_name,
    national_code, national_name, category; national_code/national_name are null for ~3 % of local codes
    (hospital-specific items not yet mapped)."""
    cat = institution_catalogue(institution_code)
    return cat.select(
        "local_code",
        "local_name",
        pl.when(pl.col("mapped")).then(pl.col("national_code")).alias("national_code"),
        pl.when(pl.col("mapped")).then(pl.col("national_name")).alias("national_name"),
        "category",
    )
