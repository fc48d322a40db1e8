"""What a standards release is made of: data elements, value domains, bindings and element relations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medlake.errors import ConfigurationError, MedlakeError

__all__ = [
    "Binding",
    "DataElement",
    "Relation",
    "StandardNotFoundError",
    "ValueDomain",
]

_DTYPES = ("string", "int", "decimal", "date", "datetime")


class StandardNotFoundError(MedlakeError, KeyError):
    """A version, data element, value domain or mapping table is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class DataElement:
    """One data element (WS/T 363 style): identity, type, representation and value domain."""

    id: str
    name: str
    dtype: str
    name_en: str = ""
    required: bool = False
    length: int | None = None  # exact length in characters
    min_length: int | None = None
    max_length: int | None = None
    format: str | None = None  # anchored regular expression
    value_domain: str | None = None
    min: Any = None  # number, ISO date, or "today"/"now"
    max: Any = None
    exclusive_min: bool = False
    scale: int | None = None  # decimal places allowed
    max_missing_percent: int | None = None  # optional element: share allowed missing (default 80; 100: no check)
    kahn: str = ""  # what the element means for quality checks

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str) -> DataElement:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"{where}: element {data.get('id')!r} has unknown fields {sorted(unknown)}")
        for key in ("id", "name", "dtype"):
            if not data.get(key):
                raise ConfigurationError(f"{where}: element {data.get('id')!r} lacks {key!r}")
        if data["dtype"] not in _DTYPES:
            raise ConfigurationError(f"{where}: element {data['id']}: dtype {data['dtype']!r} not in {_DTYPES}")
        return cls(**{k: (str(v) if k in ("id", "value_domain") and v is not None else v) for k, v in data.items()})

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ValueDomain:
    """A value domain (WS/T 364 style): its codes with labels, or a code format for open catalogues."""

    id: str
    name: str
    standard: str = ""
    codes: dict[str, str] = field(default_factory=dict)
    format: str | None = None
    length: int | None = None
    reference_file: str = ""  # set when the codes came from a CSV beside the release (large, subset domains)

    @property
    def code_list(self) -> list[str]:
        return list(self.codes)

    def label(self, code: str) -> str | None:
        return self.codes.get(code)


@dataclass(frozen=True)
class Binding:
    """A DWD column bound to a data element; ``required`` overrides the element's flag for this table."""

    table: str
    column: str
    element_id: str
    required: bool | None = None


@dataclass(frozen=True)
class Relation:
    """A rule between elements of one row (e.g. discharge not before admission), checked where all are bound."""

    kind: str
    elements: tuple[str, ...]
    severity: str = "error"
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
