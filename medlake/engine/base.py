"""What every engine does to a Delta table. Operator logic is written once against narwhals frames."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import narwhals as nw
import pyarrow as pa

__all__ = ["DECIMAL", "TEXT_FORMATS", "Engine", "WriteResult", "commit_metadata_from_commit_info", "merge_predicate"]

DECIMAL = (18, 4)  # precision, scale of every decimal column
# Formats front-end machines use for dates and times, tried in order.
TEXT_FORMATS: dict[str, tuple[str, ...]] = {
    "datetime": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M",
                 "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"),
    "date": ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"),
}


@dataclass(frozen=True)
class WriteResult:
    """What a write did, for asset metadata."""

    version: int
    rows_written: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


def merge_predicate(
    keys: tuple[str, ...] | list[str],
    source: str = "s",
    target: str = "t",
    partitions: dict[str, list[str]] | None = None,
) -> str:
    """``t.k1 = s.k1 AND t.k2 = s.k2`` for a MERGE on business keys, plus ``t.p IN ('v1', …)`` literals for the
    partition values present in the source (literal values are what lets the engines prune partitions)."""
    clauses = [f"{target}.`{k}` = {source}.`{k}`" for k in keys]
    for column, values in (partitions or {}).items():
        literals = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        clauses.append(f"{target}.`{column}` IN ({literals})" if values else "FALSE")
    return " AND ".join(clauses)


def commit_metadata_from_commit_info(commit_info: Mapping[str, Any]) -> dict[str, str]:
    """The string key/values of one Delta ``commitInfo``, with a JSON-object ``userMetadata`` expanded in place.

    delta-rs writes custom metadata as top-level ``commitInfo`` fields; Spark writes it as ``userMetadata``, a JSON
    object of the key/values. This works on a ``_delta_log`` commitInfo and on an entry of delta-rs
    ``DeltaTable.history()``, so a watermark written by either engine is found by the same key.
    """
    found = {k: v for k, v in commit_info.items() if isinstance(v, str) and k != "userMetadata"}
    user = commit_info.get("userMetadata")
    if isinstance(user, str):
        try:
            decoded = json.loads(user)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict):
            found.update({k: v for k, v in decoded.items() if isinstance(v, str)})
        else:
            found["userMetadata"] = user
    return found


@runtime_checkable
class Engine(Protocol):
    """A compute engine bound to Delta tables by path. Frames cross this boundary as narwhals frames."""

    name: str

    def exists(self, path: str) -> bool: ...

    def read(self, path: str) -> nw.LazyFrame: ...

    def from_arrow(self, table: pa.Table) -> nw.LazyFrame: ...

    def to_arrow(self, frame: nw.LazyFrame | nw.DataFrame) -> pa.Table: ...

    def persist(self, frame: nw.LazyFrame) -> nw.LazyFrame:
        """Compute once and keep, for a frame read several times (polars: collect; Spark: cache)."""
        ...

    def try_cast_text(self, frame: nw.LazyFrame, columns: dict[str, str]) -> nw.LazyFrame:
        """Type text columns (``int``, ``decimal``, ``date``, ``datetime``; formats in TEXT_FORMATS); a value that
        does not parse becomes null, and the original text is kept in ``__raw_<column>``."""
        ...

    def append(self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None) -> WriteResult: ...

    def overwrite(
        self, frame: nw.LazyFrame, path: str, *, metadata: dict[str, str] | None = None
    ) -> WriteResult: ...

    def merge(
        self,
        frame: nw.LazyFrame,
        path: str,
        *,
        keys: tuple[str, ...],
        version_column: str | None = None,
        metadata: dict[str, str] | None = None,
        partition_by: tuple[str, ...] = (),
    ) -> WriteResult:
        """Upsert on ``keys``. With ``partition_by`` (columns that are a function of the keys) a new table is
        partitioned by them and the MERGE predicate names the source's partition values, so untouched partitions
        are neither read nor rewritten."""
        ...

    def version(self, path: str) -> int | None: ...

    def commit_metadata(self, path: str) -> dict[str, str]: ...

    def row_count(self, path: str) -> int: ...
