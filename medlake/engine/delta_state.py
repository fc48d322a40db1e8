"""Small state tables through delta-rs, in the driver process, whichever engine computes the lake.

The EMPI's index, golden records, audit and review are read whole into the driver and written a few thousand rows
at a time; delta-rs commits them without a Spark job, and both engines read what it writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import narwhals as nw
import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable

from medlake.engine.polars_engine import PolarsEngine, commit_with_retry

__all__ = ["DeltaStateTable"]


def _commit(metadata: dict[str, str] | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata=metadata) if metadata else None


def _quoted(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


class DeltaStateTable:
    """A :class:`medlake.engine.base.StateTable` at ``path``, written with delta-rs (conflicting commits retried)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self._engine = PolarsEngine()

    def exists(self) -> bool:
        return self._engine.exists(self.path)

    def version(self) -> int | None:
        return self._engine.version(self.path)

    def read(self) -> pa.Table:
        return pl.read_delta(self.path).to_arrow()

    def _frame(self, data: pa.Table) -> nw.LazyFrame:
        return self._engine.from_arrow(data)

    def append(self, data: pa.Table, *, metadata: dict[str, str] | None = None) -> None:
        self._engine.append(self._frame(data), self.path, metadata=metadata)

    def upsert(
        self, data: pa.Table, key: str, *, remove: Sequence[str] = (), metadata: dict[str, str] | None = None
    ) -> None:
        if not remove:
            self._engine.merge(self._frame(data), self.path, keys=(key,), metadata=metadata)
            return

        def _merge() -> None:
            merger = DeltaTable(self.path).merge(
                source=data, predicate=f"t.`{key}` = s.`{key}`", source_alias="s", target_alias="t",
                commit_properties=_commit(metadata),
            )
            merger.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(
                predicate=f"t.`{key}` IN ({_quoted(remove)})"
            ).execute()

        commit_with_retry(self.path, _merge)

    def delete(self, key: str, values: Sequence[str], *, metadata: dict[str, str] | None = None) -> None:
        commit_with_retry(self.path, lambda: DeltaTable(self.path).delete(
            f"{key} IN ({_quoted(values)})", commit_properties=_commit(metadata)))

    def restore(self, version: int | None, *, metadata: dict[str, str] | None = None) -> None:
        if version is None:
            commit_with_retry(self.path, lambda: DeltaTable(self.path).delete(commit_properties=_commit(metadata)))
        else:
            commit_with_retry(self.path, lambda: DeltaTable(self.path).restore(
                version, commit_properties=_commit(metadata)))
