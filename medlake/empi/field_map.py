"""Which input columns hold the identifying fields of a patient record (any patient table, not only ours)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from medlake.empi.errors import FieldMapError

__all__ = ["LINKAGE_FIELDS", "FieldMap"]

LINKAGE_FIELDS = (
    "record_id", "name", "id_number", "birth_date", "sex", "phone", "address", "region", "source", "updated_at",
)


@dataclass(frozen=True)
class FieldMap:
    """Input column per linkage field; ``None`` means the input does not have that field.

    ``source`` (the delivering institution, for survivorship trust) and ``updated_at`` (recency) are optional.
    Without ``record_id`` the row number (starting at 1) is used as record id.
    """

    record_id: str | None = None
    name: str | None = None
    id_number: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    phone: str | None = None
    address: str | None = None
    region: str | None = None
    source: str | None = None
    updated_at: str | None = None

    @classmethod
    def parse(cls, text: str) -> FieldMap:
        """Parse ``"name=xm,birth_date=csrq"`` (field=column pairs, comma separated; spaces ignored)."""
        pairs: dict[str, str] = {}
        for position, item in enumerate(p.strip() for p in text.split(",")):
            if not item:
                continue
            field, sep, column = (s.strip() for s in item.partition("="))
            if not sep or not field or not column:
                raise FieldMapError(f"field map item {position + 1} {item!r}: expected field=column")
            if field in pairs:
                raise FieldMapError(f"field map item {position + 1} {item!r}: field {field!r} mapped twice")
            pairs[field] = column
        return cls.from_mapping(pairs)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | None]) -> FieldMap:
        """From a YAML-like mapping ``{field: column}``; unknown fields are an error naming the field."""
        unknown = sorted(set(mapping) - set(LINKAGE_FIELDS))
        if unknown:
            raise FieldMapError(
                f"field map: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(LINKAGE_FIELDS)}"
            )
        mapped = cls(**{k: (str(v) if v else None) for k, v in mapping.items()})
        if not mapped.comparison_fields():
            raise FieldMapError("field map: map at least one of name, id_number, birth_date, sex, phone, address")
        return mapped

    @classmethod
    def identity(cls, columns: Iterable[str]) -> FieldMap:
        """Each linkage field that appears by its own name among ``columns``."""
        present = set(columns)
        return cls(**{f: f for f in LINKAGE_FIELDS if f in present})

    def comparison_fields(self) -> list[str]:
        """The mapped fields the model compares (not record_id/source/updated_at)."""
        return [
            f for f in ("name", "id_number", "birth_date", "sex", "phone", "address", "region")
            if getattr(self, f) is not None
        ]

    def mapped(self) -> dict[str, str]:
        """``{field: column}`` for every mapped field."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def with_record_id(self, column: str) -> FieldMap:
        return replace(self, record_id=column)

    def check_columns(self, columns: Iterable[str], where: str = "input") -> None:
        """Raise naming the field and column when a mapped column is missing from ``columns``."""
        present = set(columns)
        missing = [f"{f}={c}" for f, c in self.mapped().items() if c not in present]
        if missing:
            raise FieldMapError(
                f"{where}: mapped column(s) not found: {', '.join(missing)}; columns are {', '.join(sorted(present))}"
            )
