"""Bring the base release's code lists and demo mapping tables in line with the shipped reference data.

The synthetic generator draws regions, diagnoses, lab tests, drugs and service items from ``medlake.reference``;
the standards must accept every one of them. ``sync_reference`` writes them into the base release once (the
files are committed, so a release stays fixed even when the reference data later changes):

* ``domains/<file>.csv`` (code,label): the reference codes with their reference labels, plus the codes the release
  already carried that the reference lacks (provinces, prefectures, legacy districts, three-character ICD codes);
* ``mappings/<hospital>/{drug,service}.csv`` for the first ``hospitals`` synthetic hospitals
  (``medlake.reference.institution_mapping``); other hospitals get the same table derived at run time.

``reference_drift`` lists where a release disagrees with the reference data (used by tests and the CLI).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import polars as pl

from medlake.standards.registry import DATA_DIR, MAPPING_COLUMNS, Registry, reference_mapping

__all__ = ["BASE_VERSION", "DEMO_HOSPITALS", "REFERENCE_DOMAINS", "reference_drift", "sync_reference"]

BASE_VERSION = "2023.1"
DEMO_HOSPITALS = 3
_SYNCED_CATEGORIES = ("drug", "service")


def _regions() -> pl.DataFrame:
    from medlake.reference import regions

    return regions().select(pl.col("region_code").alias("code"), pl.col("name").alias("label"))


def _icd10() -> pl.DataFrame:
    from medlake.reference import icd10

    return icd10().select("code", pl.col("name").alias("label"))


def _lab_tests() -> pl.DataFrame:
    from medlake.reference import lab_tests

    return lab_tests().select(pl.col("test_code").alias("code"), pl.col("name").alias("label"))


def _drugs() -> pl.DataFrame:
    from medlake.reference import drugs

    return drugs().select(pl.col("national_code").alias("code"), pl.col("name").alias("label"))


def _service_items() -> pl.DataFrame:
    from medlake.reference import service_items

    return service_items().select(pl.col("national_code").alias("code"), pl.col("name").alias("label"))


# value domain id → (codes file of the base release, reference loader giving code,label)
REFERENCE_DOMAINS: dict[str, tuple[str, Callable[[], pl.DataFrame]]] = {
    "GB/T 2260": ("domains/gbt2260.csv", _regions),
    "ICD-10": ("domains/icd10.csv", _icd10),
    "LOINC": ("domains/loinc.csv", _lab_tests),
    "NHSA.drug_code": ("domains/nhsa_drug.csv", _drugs),
    "NHSA.service_code": ("domains/nhsa_service.csv", _service_items),
}


def _read_codes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["code"]: row["label"] for row in csv.DictReader(fh)}


def _csv_text(header: tuple[str, ...], rows: list[tuple[str | None, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def _demo_hospitals(count: int) -> list[str]:
    from medlake.reference import institutions

    return [h.code for h in institutions(count)]


def sync_reference(version: str = BASE_VERSION, root: Path | None = None,
                   hospitals: int = DEMO_HOSPITALS) -> list[Path]:
    """Write the reference code lists and demo mapping tables into release ``version``; returns changed files."""
    folder = (root or DATA_DIR) / version
    changed: list[Path] = []
    for file, loader in REFERENCE_DOMAINS.values():
        path = folder / file
        codes = _read_codes(path)
        codes.update(dict(loader().iter_rows()))
        if _write_if_changed(path, _csv_text(("code", "label"), sorted(codes.items()))):
            changed.append(path)
    for code in _demo_hospitals(hospitals):
        for category in _SYNCED_CATEGORIES:
            frame = reference_mapping(code, category)
            path = folder / "mappings" / code / f"{category}.csv"
            if _write_if_changed(path, _csv_text(MAPPING_COLUMNS, frame.rows())):
                changed.append(path)
    return changed


def reference_drift(registry: Registry, hospitals: int = DEMO_HOSPITALS) -> list[str]:
    """Where ``registry`` disagrees with the reference data: codes missing from a domain, labels differing
    (reported only for the base release's own labels), versioned mapping tables differing from the derivation."""
    problems: list[str] = []
    for domain_id, (_, loader) in REFERENCE_DOMAINS.items():
        codes = registry.value_domain(domain_id).codes
        for code, label in loader().iter_rows():
            if code not in codes:
                problems.append(f"{registry.version} {domain_id}: reference code {code} ({label}) is missing")
            elif registry.version == BASE_VERSION and codes[code] != label:
                problems.append(f"{registry.version} {domain_id}: {code} is {codes[code]!r}, reference {label!r}")
    for code in _demo_hospitals(hospitals):
        for category in _SYNCED_CATEGORIES:
            if (code, category) not in registry.mapping_keys:
                continue
            shipped = registry.mapping_table(code, category)
            if not shipped.equals(reference_mapping(code, category)):
                problems.append(f"{registry.version} mapping {code}/{category} differs from the reference coding")
    return problems
