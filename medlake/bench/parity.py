"""Engine parity: row counts and content checksums of every Delta table of a lake, computed the same way whichever
engine wrote it, so two lakes built from the same input by different engines can be compared table by table (the
``spark_pipeline`` benchmark's ``lakes_identical``, and the parity, fault and object-store tests).

A table's checksum is the SHA-256 of its canonical CSV: columns sorted by name, load-/run-time columns left out
(:data:`RUNTIME_COLUMNS`), widths unified (any integer → Int64, float → Float64, decimal → Decimal(38, same
scale), datetime → UTC wall time in µs, lists joined), rows sorted. Values, scales and nulls are compared exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

__all__ = ["RUNTIME_COLUMNS", "TableFingerprint", "compare_lakes", "lake_fingerprints", "table_fingerprint"]

# Columns that record when or in which run a row was written, not what it holds: "*" applies to every table.
RUNTIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "*": ("_loaded_at", "logged_at", "quarantined_at", "checked_at", "created_at", "linked_at", "run_id"),
    "dwd/master_patient_index": ("batch_id",),  # the Dagster run id
    "dwd/empi_review": ("batch_id",),
    "dwd/golden_record": ("updated_at",),  # when the golden record was last rebuilt
    "governance/transcode_review": ("first_seen", "last_seen"),
}
# Text columns holding a whole row as JSON (operator quarantine): the runtime keys inside are blanked the same way.
_JSON_RECORD_COLUMNS: dict[str, str] = {"governance/quarantine": "record"}
_RUNTIME_KEY = r'"({})":"[^"]*"'.format("|".join(RUNTIME_COLUMNS["*"]))


@dataclass(frozen=True)
class TableFingerprint:
    table: str  # "<layer>/<name>"
    rows: int
    checksum: str
    columns: tuple[str, ...]


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_integer():
            col = col.cast(pl.Int64)
        elif dtype.is_float():
            col = col.cast(pl.Float64)
        elif isinstance(dtype, pl.Decimal):
            col = col.cast(pl.Decimal(38, dtype.scale))
        elif isinstance(dtype, pl.Datetime):
            col = (col.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else col)
            col = col.cast(pl.Datetime("us"))
        elif isinstance(dtype, pl.List):
            col = col.cast(pl.List(pl.String)).list.join("\x1f")
        exprs.append(col.alias(name))
    canonical = frame.select(sorted(frame.columns)).with_columns(exprs)
    return canonical.sort(canonical.columns, nulls_last=True) if canonical.width else canonical


def table_fingerprint(path: Path, table: str) -> TableFingerprint:
    """Row count and content checksum of the Delta table at ``path`` (``table`` picks the runtime columns)."""
    frame = pl.read_delta(str(path))
    skip = set(RUNTIME_COLUMNS["*"]) | set(RUNTIME_COLUMNS.get(table, ()))
    record = _JSON_RECORD_COLUMNS.get(table)
    if record in frame.columns:
        frame = frame.with_columns(pl.col(record).str.replace_all(_RUNTIME_KEY, '"$1":null'))
    canonical = _canonical(frame.drop([c for c in frame.columns if c in skip]))
    digest = hashlib.sha256(canonical.write_csv(null_value="\x00").encode("utf-8")).hexdigest()
    return TableFingerprint(table, frame.height, digest, tuple(canonical.columns))


def lake_fingerprints(lake: Path) -> dict[str, TableFingerprint]:
    """Every Delta table under ``lake`` (``<layer>/<name>``) with its fingerprint."""
    tables = sorted(log.parent for log in lake.glob("*/*/_delta_log"))
    return {f"{t.parent.name}/{t.name}": table_fingerprint(t, f"{t.parent.name}/{t.name}") for t in tables}


def compare_lakes(left: Path, right: Path) -> list[str]:
    """What differs between two lakes: tables present on one side only, row counts, columns, checksums."""
    a, b = lake_fingerprints(left), lake_fingerprints(right)
    problems = [f"{t}: only in {left if t in a else right}" for t in sorted(set(a) ^ set(b))]
    for table in sorted(set(a) & set(b)):
        x, y = a[table], b[table]
        if x.rows != y.rows:
            problems.append(f"{table}: {x.rows} rows vs {y.rows}")
        elif x.columns != y.columns:
            problems.append(f"{table}: columns {sorted(set(x.columns) ^ set(y.columns))} differ")
        elif x.checksum != y.checksum:
            problems.append(f"{table}: same {x.rows} rows, different contents ({x.checksum[:12]} vs {y.checksum[:12]})")
    return problems
