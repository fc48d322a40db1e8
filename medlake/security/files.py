"""Classify any CSV or Parquet file column by column (``medlake classify``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medlake.security.classification import suggest_class
from medlake.security.errors import ClassificationError
from medlake.security.pii import SAMPLE_SIZE, detect_column

__all__ = ["FileColumn", "classify_file", "read_sample"]

_ENCODINGS = ("utf-8", "gb18030")  # what front-end machines deliver (GBK is a subset of GB 18030)


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
    """Column → first ``rows`` values of a CSV (all columns as text, UTF-8 or GB 18030) or Parquet file."""
    import polars as pl

    if not path.is_file():
        raise ClassificationError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path, n_rows=rows)
        elif suffix in (".csv", ".txt"):
            raw = path.read_bytes()
            text = next((t for t in (_decode(raw, e) for e in _ENCODINGS) if t is not None), None)
            if text is None:
                raise ClassificationError(f"{path}: neither UTF-8 nor GB 18030 text")
            frame = pl.read_csv(text.encode("utf-8"), infer_schema=False, n_rows=rows)
        else:
            raise ClassificationError(f"{path}: expected a .csv or .parquet file, got {suffix or 'no suffix'}")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ClassificationError(f"{path}: cannot read: {exc}") from None
    return {name: frame[name].to_list() for name in frame.columns}


def _decode(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


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
