"""Column classification and grading (GB/T 39725-2020 §5 data categories, §6 grades 1–5), kept in the lake.

Every column of every governed table carries a category and a grade. The detector (``medlake.security.pii``)
suggests them from sampled values and the column's name; a data steward confirms or changes them. Both land as rows
in one append-only Delta table, ``lake/catalog/column_classification``: a column's class is its newest row, a
steward's row is never replaced by a later suggestion, and the rows before it are the history of who changed what.

Grades (GB/T 39725-2020 §6.2): 1 public; 2 usable in a limited scope, e.g. de-identified for research; 3 may
identify a person when combined (quasi-identifiers, clinical detail); 4 identifies a person directly; 5 highly
sensitive, a few named people only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from medlake.security.errors import ClassificationError
from medlake.security.pii import SAMPLE_SIZE, Detection, PiiType, detect_column

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.engine.base import Engine

__all__ = [
    "CLASSIFICATION_TABLE",
    "Category",
    "ClassificationCatalog",
    "ColumnClass",
    "governed_tables",
    "suggest_class",
    "table_location",
]

CLASSIFICATION_TABLE = ("catalog", "column_classification")
_NOT_GOVERNED = frozenset({"catalog", "security", "quality"})  # the platform's own bookkeeping folders


class Category(StrEnum):
    """GB/T 39725-2020 health and medical data categories."""

    PERSONAL_ATTRIBUTES = "personal attributes"
    HEALTH_STATUS = "health status"
    MEDICAL_APPLICATION = "medical application"
    MEDICAL_PAYMENT = "medical payment"
    HEALTH_RESOURCES = "health resources"
    PUBLIC_HEALTH = "public health"

    @property
    def label_zh(self) -> str:
        return _LABELS_ZH[self]

    @classmethod
    def parse(cls, text: str) -> Category:
        """A category from its English value, its Chinese label or its enum name (``PERSONAL_ATTRIBUTES``)."""
        cleaned = text.strip()
        for member in cls:
            if cleaned in (member.value, member.label_zh, member.name) or cleaned.lower() == member.value:
                return member
        choices = ", ".join(f"{m.value} ({m.label_zh})" for m in cls)
        raise ClassificationError(f"unknown category {text!r}; expected one of {choices}")


_LABELS_ZH = {
    Category.PERSONAL_ATTRIBUTES: "个人属性数据",
    Category.HEALTH_STATUS: "健康状况数据",
    Category.MEDICAL_APPLICATION: "医疗应用数据",
    Category.MEDICAL_PAYMENT: "医疗支付数据",
    Category.HEALTH_RESOURCES: "卫生资源数据",
    Category.PUBLIC_HEALTH: "公共卫生数据",
}

Source = Literal["detected", "steward"]


@dataclass(frozen=True)
class ColumnClass:
    table: str  # "dwd.patient"
    column: str
    category: Category
    grade: int  # 1 … 5
    pii_type: str | None = None
    source: Source = "detected"
    updated_by: str = ""
    updated_at: datetime | None = None
    hit_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["category"] = self.category.value
        data["category_zh"] = self.category.label_zh
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data


# Which PII type sits in which category, at which grade (all of them identify a person directly: grade 4).
_PII_CLASS: dict[PiiType, tuple[Category, int]] = {
    PiiType.ID_NUMBER: (Category.PERSONAL_ATTRIBUTES, 4),
    PiiType.MOBILE: (Category.PERSONAL_ATTRIBUTES, 4),
    PiiType.LANDLINE: (Category.PERSONAL_ATTRIBUTES, 4),
    PiiType.PERSON_NAME: (Category.PERSONAL_ATTRIBUTES, 4),
    PiiType.ADDRESS: (Category.PERSONAL_ATTRIBUTES, 4),
    PiiType.INSURANCE_NUMBER: (Category.MEDICAL_PAYMENT, 4),
    PiiType.BANK_CARD: (Category.MEDICAL_PAYMENT, 4),
}
# Column-name fragments → (category, grade) for columns without PII values, first match wins.
_NAME_HINTS: tuple[tuple[tuple[str, ...], Category, int], ...] = (
    # identifiers whose values are not (or no longer, once masked) personal information: still quasi-identifiers
    (("patient_id", "person_id", "empi", "master_id", "psn_no", "id_number", "id_no", "idcard", "name", "phone",
      "mobile", "tel", "address", "addr"), Category.PERSONAL_ATTRIBUTES, 3),
    (("birth", "sex", "gender", "age", "region", "ethnic", "marital", "occupation", "nation"),
     Category.PERSONAL_ATTRIBUTES, 3),
    (("notifiable", "case_report", "epidemic", "vaccin", "infect"), Category.PUBLIC_HEALTH, 3),
    (("diag", "icd", "disease", "symptom", "allergy", "lab", "result", "test", "value"), Category.HEALTH_STATUS, 3),
    (("setl", "settle", "fee", "amount", "amt", "cost", "price", "insur", "pay", "fund"),
     Category.MEDICAL_PAYMENT, 3),
    (("institution", "hospital", "org", "bed", "staff", "dept"), Category.HEALTH_RESOURCES, 2),
)


def suggest_class(column: str, detection: Detection) -> tuple[Category, int]:
    """Category and grade for a column: by its detected PII type, else by its name, else medical application 2."""
    if detection.pii_type is not None:
        return _PII_CLASS[PiiType(detection.pii_type)]
    lowered = column.lower()
    tokens = set(lowered.replace("-", "_").split("_"))
    for fragments, category, grade in _NAME_HINTS:  # short fragments match whole words only ("age", not "stage")
        if any(f in tokens if len(f) <= 3 else f in lowered for f in fragments):
            return category, grade
    return Category.MEDICAL_APPLICATION, 2


def _table_name(table: str) -> tuple[str, str]:
    """("dwd", "patient") from ``dwd.patient`` or ``dwd/patient``."""
    layer, sep, name = table.replace("/", ".").partition(".")
    if not sep or not layer or not name or "." in name:
        raise ClassificationError(f"table {table!r}: expected layer.name, e.g. dwd.patient")
    return layer, name


def table_location(settings: Settings, table: str) -> str:
    """The Delta location of ``dwd.patient`` / ``dwd/patient``."""
    return str(settings.table_path(*_table_name(table)))


def governed_tables(settings: Settings, engine: Engine) -> list[str]:
    """Every Delta table two levels below the lake root (``layer.name``), except the platform's bookkeeping."""
    from medlake.config import subfolders

    found = []
    for layer in subfolders(settings.lake):
        if layer.name in _NOT_GOVERNED:
            continue
        found += [f"{layer.name}.{t.name}" for t in subfolders(layer) if engine.exists(str(t))]
    return found


_SCHEMA = pa.schema([
    ("table", pa.string()), ("column", pa.string()), ("category", pa.string()), ("grade", pa.int64()),
    ("pii_type", pa.string()), ("hit_ratio", pa.float64()), ("source", pa.string()), ("updated_by", pa.string()),
    ("updated_at", pa.timestamp("us", tz="UTC")),
])


class ClassificationCatalog:
    """Column classes of the lake's tables, in ``lake/catalog/column_classification`` (append-only)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.location = str(settings.table_path(*CLASSIFICATION_TABLE))

    def _rows(self) -> list[dict[str, Any]]:
        if not self.engine.exists(self.location):
            return []
        return self.engine.to_arrow(self.engine.read(self.location)).to_pylist()

    def all(self) -> list[ColumnClass]:
        """The current class of every classified column (its newest row), sorted by table and column."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in sorted(self._rows(), key=lambda r: r["updated_at"]):
            latest[(row["table"], row["column"])] = row
        return [_column_class(latest[key]) for key in sorted(latest)]

    def history(self, table: str, column: str) -> list[ColumnClass]:
        """Every recorded class of one column, oldest first."""
        name = ".".join(_table_name(table))
        rows = [r for r in self._rows() if r["table"] == name and r["column"] == column]
        return [_column_class(r) for r in sorted(rows, key=lambda r: r["updated_at"])]

    def for_table(self, table: str) -> dict[str, ColumnClass]:
        """Column → class of one table (``dwd.patient``); columns never classified are absent."""
        name = ".".join(_table_name(table))
        return {c.column: c for c in self.all() if c.table == name}

    def _append(self, classes: Iterable[ColumnClass], metadata: Mapping[str, str]) -> int:
        rows = [{**asdict(c), "category": c.category.value} for c in classes]
        if not rows:
            return 0
        table = pa.Table.from_pylist([{k: r[k] for k in _SCHEMA.names} for r in rows], schema=_SCHEMA)
        self.engine.append(self.engine.from_arrow(table), self.location, metadata=dict(metadata))
        return table.num_rows

    def set(self, table: str, column: str, *, category: str | Category, grade: int, by: str) -> ColumnClass:
        """Record a data steward's class for a column; it stays until a steward changes it."""
        layer, name = _table_name(table)
        if not by.strip():
            raise ClassificationError(f"{layer}.{name}.{column}: a steward edit needs the steward's name (by=)")
        if not isinstance(grade, int) or not 1 <= grade <= 5:
            raise ClassificationError(f"{layer}.{name}.{column}: grade {grade!r}: expected 1 … 5")
        location = table_location(self.settings, table)
        if self.engine.exists(location):
            columns = self.engine.read(location).collect_schema().names()
            if column not in columns:
                raise ClassificationError(f"{layer}.{name} has no column {column!r}; it has {', '.join(columns)}")
        parsed = category if isinstance(category, Category) else Category.parse(category)
        previous = self.for_table(table).get(column)
        record = ColumnClass(
            table=f"{layer}.{name}", column=column, category=parsed, grade=grade,
            pii_type=previous.pii_type if previous else None, source="steward", updated_by=by.strip(),
            updated_at=datetime.now(UTC), hit_ratio=previous.hit_ratio if previous else None,
        )
        self._append([record], {"writer": "medlake.security.classification", "steward": record.updated_by})
        return record

    def suggest(self, table: str, *, sample: int = SAMPLE_SIZE) -> list[ColumnClass]:
        """Detected classes for one table's columns from a sample of its rows (nothing is written)."""
        layer, name = _table_name(table)
        frame = self.engine.read(table_location(self.settings, table)).head(sample)
        data = self.engine.to_arrow(frame)
        now = datetime.now(UTC)
        found = []
        for column in data.column_names:
            detection = detect_column(data.column(column).to_pylist())
            category, grade = suggest_class(column, detection)
            found.append(ColumnClass(
                table=f"{layer}.{name}", column=column, category=category, grade=grade,
                pii_type=str(detection.pii_type) if detection.pii_type else None, source="detected",
                updated_by="medlake.security.pii", updated_at=now, hit_ratio=detection.hit_ratio,
            ))
        return found

    def suggest_all(self, tables: Iterable[str] | None = None, *, sample: int = SAMPLE_SIZE) -> list[ColumnClass]:
        """Detect and record classes for ``tables`` (default: every governed table). Columns a steward classified
        keep the steward's class; a detected class is written only when it differs from the column's current one.
        Returns the classes written."""
        names = list(tables) if tables is not None else governed_tables(self.settings, self.engine)
        current = {(c.table, c.column): c for c in self.all()}
        written: list[ColumnClass] = []
        for table in names:
            for suggestion in self.suggest(table, sample=sample):
                existing = current.get((suggestion.table, suggestion.column))
                if existing is not None and (existing.source == "steward" or _same(existing, suggestion)):
                    continue
                written.append(suggestion)
        self._append(written, {"writer": "medlake.security.classification", "suggested_tables": str(len(names))})
        return written


def _same(a: ColumnClass, b: ColumnClass) -> bool:
    return (a.category, a.grade, a.pii_type) == (b.category, b.grade, b.pii_type)


def _column_class(row: Mapping[str, Any]) -> ColumnClass:
    return ColumnClass(
        table=row["table"], column=row["column"], category=Category(row["category"]), grade=int(row["grade"]),
        pii_type=row["pii_type"], source=row["source"], updated_by=row["updated_by"], updated_at=row["updated_at"],
        hit_ratio=row["hit_ratio"],
    )
