"""The versioned standards registry, read from release folders under ``medlake/standards/data/<version>/``.

A release folder holds ``release.yaml`` (version, date, ``extends``, ``removed``) and any of ``elements.yaml``,
``value_domains.yaml``, ``bindings.yaml``, ``relations.yaml`` and ``mappings/<institution>/<category>.csv``. A
release that ``extends`` another starts from it: entries with the same id replace the parent's, ``removed`` drops
ids, and a file it does not ship is inherited unchanged. A value domain entry of an extending release that gives
neither ``codes`` nor ``codes_file`` is a delta on the inherited domain: ``add_codes`` (code: label, also relabels),
``remove_codes`` and any of name/standard/format/length.

The large code lists of the base release (``domains/*.csv``) and the demo hospitals' drug and service mapping
tables were generated once from ``medlake.reference`` (``medlake standards sync-reference``) and are committed, so
a release never changes when the synthetic reference data does; tests compare them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from medlake.config import Settings, settings
from medlake.errors import ConfigurationError
from medlake.lake.dwd import (
    DWD_LOAD_COLUMNS,  # written by the loader
    PARTITION_COLUMN,
)
from medlake.lake.dwd import dwd_columns as _lake_dwd_columns
from medlake.sources import SOURCES
from medlake.standards.model import Binding, DataElement, Relation, StandardNotFoundError, ValueDomain

__all__ = [
    "CATALOGUE_DOMAINS",
    "DATA_DIR",
    "DWD_LOAD_COLUMNS",
    "MAPPING_CATEGORIES",
    "MAPPING_COLUMNS",
    "Registry",
    "dwd_columns",
    "reference_mapping",
    "standards_dir",
]

DATA_DIR = Path(__file__).parent / "data"
MAPPING_CATEGORIES = ("drug", "service", "diagnosis")
MAPPING_COLUMNS = ("local_code", "local_name", "national_code", "national_name")
# mapping category → value domain holding its national codes and names
CATALOGUE_DOMAINS = {"drug": "NHSA.drug_code", "service": "NHSA.service_code", "diagnosis": "ICD-10"}
_HOSPITAL_CODE = re.compile(r"^H[0-9]{11}$")
_DOMAIN_FIELDS = ("name", "standard", "format", "length")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dwd_columns(table: str) -> list[str]:
    """The columns of DWD table ``table`` in order: institution_code, source columns, load columns."""
    spec = next((s for s in SOURCES if s.name == table), None)
    if spec is None:
        raise StandardNotFoundError(f"no DWD table {table!r}")
    return [c for c in _lake_dwd_columns(spec) if c != PARTITION_COLUMN]  # governed columns, not the layout


def standards_dir(current: Settings) -> Path:
    """The release folders: ``current.standards_dir`` (``MEDLAKE_STANDARDS_DIR``) or the shipped ``DATA_DIR``."""
    return current.standards_dir or DATA_DIR


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else standards_dir(settings())


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        raise ConfigurationError(f"standards version {version!r}: expected numbers like 2024.1") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping at the top level")
    return data


def _read_codes_csv(path: Path) -> dict[str, str]:
    if not path.exists():
        raise ConfigurationError(f"{path}: value domain codes file is missing")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"code", "label"} <= set(reader.fieldnames):
            raise ConfigurationError(f"{path}: expected a header 'code,label'")
        return {row["code"].strip(): row["label"].strip() for row in reader}


def _value_domain(data: dict[str, Any], folder: Path, where: str) -> ValueDomain:
    if not data.get("id") or not data.get("name"):
        raise ConfigurationError(f"{where}: value domain {data.get('id')!r} needs 'id' and 'name'")
    codes = {str(k): str(v) for k, v in (data.get("codes") or {}).items()}
    reference = ""
    if data.get("codes_file"):
        reference = str(data["codes_file"])
        codes = _read_codes_csv(folder / reference)
    return ValueDomain(
        id=str(data["id"]), name=str(data["name"]), standard=str(data.get("standard", "")), codes=codes,
        format=data.get("format"), length=data.get("length"), reference_file=reference,
    )


def _patched_domain(parent: ValueDomain, data: dict[str, Any], where: str) -> ValueDomain:
    """``parent`` with a later release's delta applied: added/relabelled codes, removed codes, changed fields."""
    unknown = set(data) - {"id", "add_codes", "remove_codes", *_DOMAIN_FIELDS}
    if unknown:
        raise ConfigurationError(f"{where}: value domain {parent.id!r} delta has unknown fields {sorted(unknown)}")
    codes = dict(parent.codes)
    for code in data.get("remove_codes") or []:
        if str(code) not in codes:
            raise ConfigurationError(f"{where}: value domain {parent.id!r} cannot remove unknown code {code!r}")
        del codes[str(code)]
    codes.update({str(k): str(v) for k, v in (data.get("add_codes") or {}).items()})
    fields = {f: data[f] for f in _DOMAIN_FIELDS if f in data}
    return ValueDomain(
        id=parent.id, name=str(fields.get("name", parent.name)), standard=str(fields.get("standard", parent.standard)),
        codes=codes,
        format=fields.get("format", parent.format), length=fields.get("length", parent.length),
        reference_file=parent.reference_file,
    )


def _binding_list(data: dict[str, Any], where: str) -> list[Binding]:
    out: list[Binding] = []
    for table, columns in (data.get("bindings") or {}).items():
        for column, target in (columns or {}).items():
            if isinstance(target, dict):
                if "element" not in target:
                    raise ConfigurationError(f"{where}: {table}.{column}: binding mapping needs 'element'")
                out.append(Binding(table, column, str(target["element"]), target.get("required")))
            else:
                out.append(Binding(table, column, str(target)))
    return out


@dataclass
class _Release:
    version: str
    released: str = ""
    notes: str = ""
    elements: dict[str, DataElement] = field(default_factory=dict)
    value_domains: dict[str, ValueDomain] = field(default_factory=dict)
    bindings: dict[tuple[str, str], Binding] = field(default_factory=dict)
    relations: list[Relation] = field(default_factory=list)
    mapping_files: dict[tuple[str, str], Path] = field(default_factory=dict)


def _load_release(version: str, root: Path, seen: tuple[str, ...] = ()) -> _Release:
    folder = root / version
    release_file = folder / "release.yaml"
    if not release_file.exists():
        raise StandardNotFoundError(f"no standards release {version!r} (looked for {release_file})")
    if version in seen:
        raise ConfigurationError(f"{release_file}: 'extends' forms a cycle through {', '.join(seen)}")
    meta = _read_yaml(release_file)
    if str(meta.get("version")) != version:
        raise ConfigurationError(f"{release_file}: version {meta.get('version')!r} differs from folder {version!r}")
    parent = meta.get("extends")
    rel = _load_release(str(parent), root, (*seen, version)) if parent else _Release(version)
    rel.version, rel.released, rel.notes = version, str(meta.get("released", "")), str(meta.get("notes", ""))
    removed = meta.get("removed") or {}
    for key in removed.get("elements") or []:
        rel.elements.pop(str(key), None)
    for key in removed.get("value_domains") or []:
        rel.value_domains.pop(str(key), None)
    if (path := folder / "elements.yaml").exists():
        for item in _read_yaml(path).get("elements") or []:
            element = DataElement.from_mapping(item, str(path))
            rel.elements[element.id] = element
    if (path := folder / "value_domains.yaml").exists():
        for item in _read_yaml(path).get("value_domains") or []:
            inherited = rel.value_domains.get(str(item.get("id")))
            is_delta = inherited is not None and "codes" not in item and "codes_file" not in item
            domain = _patched_domain(inherited, item, str(path)) if is_delta else _value_domain(item, folder, str(path))
            rel.value_domains[domain.id] = domain
    if (path := folder / "bindings.yaml").exists():
        for binding in _binding_list(_read_yaml(path), str(path)):
            rel.bindings[(binding.table, binding.column)] = binding
    if (path := folder / "relations.yaml").exists():
        rel.relations = [
            Relation(kind=str(r["kind"]), elements=tuple(str(e) for e in r["elements"]),
                     severity=str(r.get("severity", "error")), params=dict(r.get("params") or {}),
                     note=str(r.get("note", "")))
            for r in _read_yaml(path).get("relations") or []
        ]
    for path in sorted((folder / "mappings").glob("*/*.csv")):
        rel.mapping_files[(path.parent.name, path.stem)] = path
    return rel


class Registry:
    """One release of the standards: elements, value domains, DWD bindings, relations and mapping tables."""

    def __init__(self, release: _Release, root: Path) -> None:
        self._release = release
        self._root = root
        self._validate()

    # -- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def versions(cls, data_dir: Path | None = None) -> list[str]:
        """Every release under ``data_dir`` (default: the settings' :func:`standards_dir`), oldest first."""
        root = _data_dir(data_dir)
        found = [p.name for p in root.iterdir() if (p / "release.yaml").exists()] if root.exists() else []
        return sorted(found, key=_version_key)

    @classmethod
    def load(cls, version: str | None = None, data_dir: Path | None = None) -> Registry:
        """Release ``version`` (the newest when None) from ``data_dir`` (default: the settings'
        :func:`standards_dir`)."""
        root = _data_dir(data_dir)
        versions = cls.versions(root)
        if not versions:
            raise StandardNotFoundError(f"no standards releases under {root}")
        chosen = version or versions[-1]
        if chosen not in versions:
            raise StandardNotFoundError(f"no standards release {chosen!r}; known: {', '.join(versions)}")
        return cls(_load_release(chosen, root), root)

    def _validate(self) -> None:
        where = self._root / self.version
        for element in self.elements:
            if element.value_domain and element.value_domain not in self._release.value_domains:
                raise ConfigurationError(
                    f"{where}: element {element.id} names unknown value domain {element.value_domain!r}")
        for binding in self.bindings:
            if binding.element_id not in self._release.elements:
                raise ConfigurationError(
                    f"{where}: {binding.table}.{binding.column} is bound to unknown element {binding.element_id}")
        for spec in SOURCES:
            bound = {b.column for b in self.bindings_for(spec.name)}
            missing = [c for c in dwd_columns(spec.name) if c not in bound]
            if missing:
                raise ConfigurationError(f"{where}: DWD table {spec.name} has unbound columns {missing}")
        for relation in self.relations:
            unknown = [e for e in relation.elements if e not in self._release.elements]
            if unknown:
                raise ConfigurationError(f"{where}: relation {relation.kind} names unknown elements {unknown}")

    # -- content -------------------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._release.version

    @property
    def released(self) -> str:
        return self._release.released

    @property
    def notes(self) -> str:
        return self._release.notes

    @property
    def elements(self) -> list[DataElement]:
        return sorted(self._release.elements.values(), key=lambda e: e.id)

    def element(self, element_id: str) -> DataElement:
        try:
            return self._release.elements[element_id]
        except KeyError:
            raise StandardNotFoundError(f"release {self.version} has no data element {element_id!r}") from None

    @property
    def value_domains(self) -> list[ValueDomain]:
        return sorted(self._release.value_domains.values(), key=lambda d: d.id)

    def value_domain(self, domain_id: str) -> ValueDomain:
        try:
            return self._release.value_domains[domain_id]
        except KeyError:
            raise StandardNotFoundError(f"release {self.version} has no value domain {domain_id!r}") from None

    @property
    def bindings(self) -> list[Binding]:
        order = {s.name: i for i, s in enumerate(SOURCES)}
        return sorted(
            self._release.bindings.values(),
            key=lambda b: (order.get(b.table, len(order)), b.table, _column_rank(b.table, b.column)),
        )

    def bindings_for(self, table: str) -> list[Binding]:
        return [b for b in self.bindings if b.table == table]

    def required(self, binding: Binding) -> bool:
        """Whether the bound column must be filled: the binding's override, else the element's flag."""
        return binding.required if binding.required is not None else self.element(binding.element_id).required

    @property
    def relations(self) -> list[Relation]:
        return list(self._release.relations)

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(b.table for b in self.bindings))

    # -- mapping tables ------------------------------------------------------------------------------------------
    def mapping_table(self, institution_code: str, category: str) -> pl.DataFrame:
        """Local→national code mapping of one hospital: local_code, local_name, national_code, national_name
        (national columns null for local codes not mapped yet).

        A versioned CSV ``mappings/<institution>/<category>.csv`` of this release (or one it extends) wins.
        Otherwise the table is derived deterministically: diagnosis → identity over this release's ICD-10 domain
        (hospitals deliver ICD-10 codes; names are the release's labels), drug/service → the hospital's local
        coding from ``medlake.reference.institution_mapping`` (any ``H`` + 11 digits code).
        """
        if category not in MAPPING_CATEGORIES:
            raise StandardNotFoundError(f"mapping category {category!r}: expected one of {MAPPING_CATEGORIES}")
        path = self._release.mapping_files.get((institution_code, category))
        if path is not None:
            frame = pl.read_csv(path, schema_overrides=dict.fromkeys(MAPPING_COLUMNS, pl.Utf8))
            missing = [c for c in MAPPING_COLUMNS if c not in frame.columns]
            if missing:
                raise ConfigurationError(f"{path}: mapping table lacks columns {missing}")
            return frame.select(MAPPING_COLUMNS)
        if not _HOSPITAL_CODE.match(institution_code):
            raise StandardNotFoundError(
                f"no {category} mapping table for {institution_code!r}: only hospitals (H + 11 digits) map local codes")
        if category == "diagnosis":
            codes = self.catalogue("diagnosis")
            return codes.select(pl.col("national_code").alias("local_code"),
                                pl.col("national_name").alias("local_name"), "national_code", "national_name")
        return reference_mapping(institution_code, category)

    def catalogue(self, category: str) -> pl.DataFrame:
        """National codes of a mapping category in this release: national_code, national_name."""
        if category not in CATALOGUE_DOMAINS:
            raise StandardNotFoundError(f"catalogue {category!r}: expected one of {tuple(CATALOGUE_DOMAINS)}")
        domain = self.value_domain(CATALOGUE_DOMAINS[category])
        return pl.DataFrame({"national_code": list(domain.codes), "national_name": list(domain.codes.values())},
                            schema={"national_code": pl.Utf8, "national_name": pl.Utf8})

    @property
    def mapping_keys(self) -> list[tuple[str, str]]:
        """(institution, category) pairs with a versioned mapping file in this release."""
        return sorted(self._release.mapping_files)


def _column_rank(table: str, column: str) -> int:
    try:
        return dwd_columns(table).index(column)
    except (ValueError, StandardNotFoundError):
        return 10_000


def reference_mapping(institution_code: str, category: str) -> pl.DataFrame:
    """A hospital's drug or service mapping as ``medlake.reference`` derives it (deterministic per code)."""
    from medlake.reference import institution_mapping

    frame = institution_mapping(institution_code).filter(pl.col("category") == category)
    missing = [c for c in MAPPING_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"medlake.reference.institution_mapping({institution_code!r}) lacks columns {missing}")
    return frame.select([pl.col(c).cast(pl.Utf8) for c in MAPPING_COLUMNS])
