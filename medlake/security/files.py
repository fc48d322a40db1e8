"""Classify any CSV or Parquet file column by column (``medlake classify``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medlake.security.classification import suggest_class
from medlake.security.errors import ClassificationError
from medlake.security.pii import SAMPLE_SIZE, detect_column

__all__ = ["FileColumn", "classify_file", "read_sample"]

@dataclass(frozen=True)
class FileColumn:
    column: str
    pii_type: str | None
    hit_ratio: float
    sampled: int
    category: str
    category_zh: str
    grade: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_sample(path: Path, rows: int = SAMPLE_SIZE) -> dict[str, list[Any]]:
    """Column → first ``rows`` values of a CSV (all columns as text, UTF-8 or GB 18030), JSON-lines or Parquet
    file."""
    from medlake.errors import IngestError
    from medlake.table_files import read_table_file

    try:
        frame = read_table_file(path, rows, lenient=True)  # a delivery's stray bad bytes must not stop sampling
    except IngestError as exc:
        raise ClassificationError(str(exc)) from None
    return {name: frame[name].to_list() for name in frame.columns}


def classify_file(path: Path | str, rows: int = SAMPLE_SIZE) -> list[FileColumn]:
    """Per column: detected PII type (or None), hit ratio, suggested GB/T 39725 category and grade."""
    found = []
    for column, values in read_sample(Path(path), rows).items():
        detection = detect_column(values)
        category, grade = suggest_class(column, detection)
        found.append(FileColumn(column=column, pii_type=str(detection.pii_type) if detection.pii_type else None,
                                hit_ratio=detection.hit_ratio, sampled=detection.sampled, category=category.value,
                                category_zh=category.label_zh, grade=grade))
    return found
