"""What the Delta transaction log says about a table — schema, row count, size, last commit — without scanning data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from medlake.config import LakePath

__all__ = ["DeltaSnapshot", "delta_snapshot"]


@dataclass(frozen=True)
class DeltaSnapshot:
    location: str
    version: int
    schema: pa.Schema
    rows: int | None  # None when a data file was written without statistics
    size_bytes: int
    files: int
    last_commit: datetime | None
    last_operation: str


def _last_commit(table: DeltaTable) -> tuple[datetime | None, str]:
    history = table.history(1)
    if not history:
        return None, ""
    millis = history[0].get("timestamp")
    when = datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis is not None else None
    return when, str(history[0].get("operation", ""))


def delta_snapshot(location: str | LakePath) -> DeltaSnapshot | None:
    """Log-only facts of the Delta table at ``location`` (a local path or an object-store URI: delta-rs reads the
    log there itself, with credentials from the environment); None when there is no Delta table there."""
    try:
        if not DeltaTable.is_deltatable(str(location)):
            return None
    except OSError:  # not a folder at all, e.g. a delivered landing file
        return None
    table = DeltaTable(str(location))
    actions = pa.table(table.get_add_actions(flatten=True))
    files = actions.num_rows
    size = int(pc.sum(actions["size_bytes"]).as_py() or 0) if files else 0
    rows: int | None = 0
    if files:
        counts = actions["num_records"] if "num_records" in actions.column_names else None
        rows = None if counts is None or counts.null_count else int(pc.sum(counts).as_py() or 0)
    when, operation = _last_commit(table)
    return DeltaSnapshot(
        location=str(location),
        version=table.version(),
        schema=pa.schema(table.schema().to_arrow()),
        rows=rows,
        size_bytes=size,
        files=files,
        last_commit=when,
        last_operation=operation,
    )
