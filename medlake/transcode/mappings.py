"""Where local→national mapping tables and national catalogues come from.

The operator only needs two look-ups, so it depends on this small protocol; the default implementation adapts the
versioned standards registry (``medlake.standards.Registry``), and tests or benchmarks pass frames directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import polars as pl

from medlake.errors import MedlakeError
from medlake.transcode.errors import TranscodeError

__all__ = [
    "CATALOGUE_COLUMNS",
    "MAPPING_COLUMNS",
    "FrameMappings",
    "MappingSource",
    "RegistryMappings",
    "conform_catalogue",
    "conform_mapping",
]

MAPPING_COLUMNS = ("local_code", "local_name", "national_code", "national_name")
CATALOGUE_COLUMNS = ("national_code", "national_name")


@runtime_checkable
class MappingSource(Protocol):
    """Mapping tables per (institution, category) and the national catalogue per category."""

    def mapping_table(self, institution_code: str, category: str) -> pl.DataFrame: ...

    def catalogue(self, category: str) -> pl.DataFrame: ...


def conform_mapping(frame: pl.DataFrame, *, where: str) -> pl.DataFrame:
    """The four mapping columns as text, trimmed, one row per local code (first wins)."""
    missing = [c for c in MAPPING_COLUMNS if c not in frame.columns]
    if missing:
        raise TranscodeError(f"mapping table {where}: missing column(s) {', '.join(missing)}; "
                             f"expected {', '.join(MAPPING_COLUMNS)}")
    return (
        frame.select(pl.col(c).cast(pl.Utf8).str.strip_chars() for c in MAPPING_COLUMNS)
        .filter(pl.col("local_code").is_not_null() & pl.col("national_code").is_not_null())
        .unique(subset="local_code", keep="first", maintain_order=True)
    )


def conform_catalogue(frame: pl.DataFrame, *, where: str) -> pl.DataFrame:
    """National code and name as text, one row per code."""
    missing = [c for c in CATALOGUE_COLUMNS if c not in frame.columns]
    if missing:
        raise TranscodeError(f"catalogue {where}: missing column(s) {', '.join(missing)}")
    return (
        frame.select(pl.col(c).cast(pl.Utf8).str.strip_chars() for c in CATALOGUE_COLUMNS)
        .filter(pl.col("national_code").is_not_null())
        .unique(subset="national_code", keep="first", maintain_order=True)
    )


class FrameMappings:
    """Mapping tables held in memory, keyed by (institution, category); catalogues default to their union."""

    def __init__(
        self,
        tables: Mapping[tuple[str, str], pl.DataFrame],
        catalogues: Mapping[str, pl.DataFrame] | None = None,
    ) -> None:
        self._tables = {key: conform_mapping(df, where=f"{key[0]}/{key[1]}") for key, df in tables.items()}
        self._catalogues = {cat: conform_catalogue(df, where=cat) for cat, df in (catalogues or {}).items()}

    def mapping_table(self, institution_code: str, category: str) -> pl.DataFrame:
        empty = pl.DataFrame(schema=dict.fromkeys(MAPPING_COLUMNS, pl.Utf8))
        return self._tables.get((institution_code, category), empty)

    def catalogue(self, category: str) -> pl.DataFrame:
        if category in self._catalogues:
            return self._catalogues[category]
        return _union_catalogue(df for (_, cat), df in self._tables.items() if cat == category)


def _union_catalogue(frames: Any) -> pl.DataFrame:
    parts = [df.select(CATALOGUE_COLUMNS) for df in frames]
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(CATALOGUE_COLUMNS, pl.Utf8))
    return conform_catalogue(pl.concat(parts), where="union of mapping tables")


class RegistryMappings:
    """Adapter over ``medlake.standards.Registry.load(version)`` (imported lazily, on first use).

    ``mapping_table`` is required of the registry (a pair it has no table for maps nothing and is listed in
    ``missing``); ``catalogue(category)`` is used when the registry has it, else the national catalogue of
    ``medlake.reference.catalogue``, else the union of the national codes of the mapping tables read so far.
    """

    def __init__(self, version: str | None = None) -> None:
        self.version = version
        self._registry: Any = None
        self._seen: dict[tuple[str, str], pl.DataFrame] = {}
        self.missing: dict[tuple[str, str], str] = {}  # pairs the registry has no table for, with its reason

    def _load(self) -> Any:
        if self._registry is None:
            try:
                standards = importlib.import_module("medlake.standards")
                registry_class = getattr(standards, "Registry", None) or importlib.import_module(
                    "medlake.standards.registry"
                ).Registry
            except (ImportError, AttributeError) as exc:
                raise TranscodeError(
                    f"transcoding needs the standards registry (medlake.standards.Registry), which cannot be "
                    f"imported: {exc}"
                ) from exc
            self._registry = registry_class.load(self.version)
        return self._registry

    def mapping_table(self, institution_code: str, category: str) -> pl.DataFrame:
        key = (institution_code, category)
        if key not in self._seen:
            registry = self._load()
            try:
                raw = registry.mapping_table(institution_code, category)
            except (MedlakeError, LookupError) as exc:  # no table for this pair: every code is unmapped
                self.missing[key] = str(exc)
                raw = pl.DataFrame(schema=dict.fromkeys(MAPPING_COLUMNS, pl.Utf8))
            self._seen[key] = conform_mapping(_as_polars(raw), where=f"{institution_code}/{category}")
        return self._seen[key]

    def catalogue(self, category: str) -> pl.DataFrame:
        registry = self._load()
        if callable(getattr(registry, "catalogue", None)):
            return conform_catalogue(_as_polars(registry.catalogue(category)), where=category)
        reference = _reference_catalogue(category)
        if reference is not None:
            return reference
        return _union_catalogue(df for (_, cat), df in self._seen.items() if cat == category)


# category → (function in medlake.reference.catalogue, its code column, its name column)
_REFERENCE_CATALOGUES = {
    "drug": ("drugs", "national_code", "name"),
    "service": ("service_items", "national_code", "name"),
    "diagnosis": ("icd10", "code", "name"),
}


def _reference_catalogue(category: str) -> pl.DataFrame | None:
    """The national catalogue shipped in ``medlake.reference`` for ``category``, if that module provides it."""
    if category not in _REFERENCE_CATALOGUES:
        return None
    function, code, name = _REFERENCE_CATALOGUES[category]
    try:
        module = importlib.import_module("medlake.reference.catalogue")
        frame = getattr(module, function)()
    except (ImportError, AttributeError):
        return None
    return conform_catalogue(
        _as_polars(frame).select(pl.col(code).alias("national_code"), pl.col(name).alias("national_name")),
        where=f"medlake.reference.catalogue.{function}",
    )


def _as_polars(frame: Any) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    return pl.DataFrame(frame)
