"""Quarantine: every record medlake refuses, with where it came from and why. Nothing is dropped silently.

One Delta table per (layer, table) under ``lake/quarantine/`` so loads of different tables never contend for one
table's commits. Writes are idempotent (MERGE on file checksum + line + field + reason).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow as pa

from medlake.config import Settings
from medlake.engine.base import Engine

__all__ = ["QUARANTINE_KEY", "QUARANTINE_SCHEMA", "Rejected", "quarantine_path", "write_quarantine"]

QUARANTINE_SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("table", pa.string()),
        ("institution", pa.string()),
        ("batch_id", pa.string()),
        ("source_file", pa.string()),
        ("file_sha256", pa.string()),
        ("source_line", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)
QUARANTINE_KEY = ("file_sha256", "source_line", "field", "reason")


@dataclass(frozen=True)
class Rejected:
    """One refused record (or a whole file, with ``source_line`` 0)."""

    source_line: int
    field: str
    reason: str
    raw: str = ""


def quarantine_path(settings: Settings, layer: str, table: str) -> str:
    return str(settings.lake / "quarantine" / f"{layer}_{table}")


def write_quarantine(
    engine: Engine,
    settings: Settings,
    *,
    layer: str,
    table: str,
    rows: pa.Table | list[Rejected],
    institution: str = "",
    batch_id: str = "",
    source_file: str = "",
    file_sha256: str = "",
) -> int:
    """Append refused records (idempotently). ``rows`` is a list of Rejected or an arrow table with the
    schema's columns (missing provenance columns are filled from the keyword arguments)."""
    if isinstance(rows, list):
        if not rows:
            return 0
        rows = pa.Table.from_pylist([asdict(r) for r in rows])
    if rows.num_rows == 0:
        return 0
    now = datetime.now(UTC)
    defaults = {
        "layer": layer, "table": table, "institution": institution, "batch_id": batch_id,
        "source_file": source_file, "file_sha256": file_sha256, "source_line": 0, "field": "", "reason": "",
        "raw": "", "quarantined_at": now,
    }
    columns = []
    for f in QUARANTINE_SCHEMA:
        if f.name in rows.column_names:
            columns.append(rows.column(f.name).cast(f.type))
        else:
            columns.append(pa.array([defaults[f.name]] * rows.num_rows, type=f.type))
    data = pa.Table.from_arrays(columns, schema=QUARANTINE_SCHEMA)
    engine.merge(
        engine.from_arrow(data),
        quarantine_path(settings, layer, table),
        keys=QUARANTINE_KEY,
    )
    return data.num_rows
