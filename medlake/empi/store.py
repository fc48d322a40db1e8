"""The EMPI's Delta tables under one folder, with their schemas and the few writes the index needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from medlake.config import LakePath, is_remote, lake_path
from medlake.empi.features import FEATURE_SCHEMA

if TYPE_CHECKING:
    from medlake.engine.base import Engine, StateTable

__all__ = ["TABLES", "EmpiStore", "utc_now", "write_text_atomically"]

_TS = pl.Datetime("us")
TABLES: dict[str, dict[str, pl.DataType]] = {
    "master_patient_index": {
        "record_id": pl.Utf8(), "master_id": pl.Utf8(), "match_score": pl.Float64(), "match_rule": pl.Utf8(),
        "linked_at": _TS, "batch_id": pl.Utf8(),
        **{k: v for k, v in FEATURE_SCHEMA.items() if k != "record_id"},
    },
    "golden_record": {
        "master_id": pl.Utf8(), "name": pl.Utf8(), "id_number": pl.Utf8(), "birth_date": pl.Utf8(),
        "sex": pl.Utf8(), "phone": pl.Utf8(), "address": pl.Utf8(), "region": pl.Utf8(),
        "record_count": pl.Int64(), "first_record_id": pl.Utf8(), "created_at": _TS, "updated_at": _TS,
    },
    "empi_audit": {
        "event_time": _TS, "event": pl.Utf8(), "master_id": pl.Utf8(), "other_master_id": pl.Utf8(),
        "record_a": pl.Utf8(), "record_b": pl.Utf8(), "score": pl.Float64(), "rule": pl.Utf8(),
        "reason": pl.Utf8(), "batch_id": pl.Utf8(),
    },
    "empi_review": {
        "record_a": pl.Utf8(), "record_b": pl.Utf8(), "master_a": pl.Utf8(), "master_b": pl.Utf8(),
        "score": pl.Float64(), "reason": pl.Utf8(), "status": pl.Utf8(), "created_at": _TS, "batch_id": pl.Utf8(),
    },
    "empi_manual_decisions": {
        "record_a": pl.Utf8(), "record_b": pl.Utf8(), "decision": pl.Utf8(), "who": pl.Utf8(), "why": pl.Utf8(),
        "decided_at": _TS,
    },
}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def write_text_atomically(path: LakePath, text: str) -> None:
    """``path`` holds either its old content or ``text``, never a torn write (a process killed mid-write): a local
    file is written beside and renamed over; an object-store PUT is atomic already."""
    if is_remote(path):
        path.write_text(text, encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


class EmpiStore:
    """Reads and writes the five EMPI tables below ``root`` (one Delta table per folder) as ``engine``'s state tables
    (default: the embedded engine's)."""

    def __init__(self, root: LakePath | str, engine: Engine | None = None) -> None:
        self.root = lake_path(root)  # a folder, or an object-store UPath below MEDLAKE_LAKE_URI
        if engine is None:
            from medlake.engine.polars_engine import PolarsEngine

            engine = PolarsEngine()
        self.engine = engine

    def path(self, table: str) -> str:
        return str(self.root / table)

    def table(self, table: str) -> StateTable:
        return self.engine.state_table(self.path(table))

    @property
    def model_path(self) -> LakePath:
        return self.root / "empi_model.json"

    @property
    def journal_path(self) -> LakePath:
        """Present while a linking batch is being written: the batch and each table's version before it."""
        return self.root / "empi_pending_batch.json"

    def begin_batch(self, batch_id: str, tables: tuple[str, ...]) -> None:
        """Record the versions of ``tables`` before a batch writes them (``finish_batch`` removes the record)."""
        versions = {t: self.table(t).version() for t in tables}
        write_text_atomically(self.journal_path, json.dumps({"batch_id": batch_id, "versions": versions}))

    def finish_batch(self) -> None:
        self.journal_path.unlink(missing_ok=True)

    def undo_unfinished_batch(self) -> str | None:
        """Roll back the tables a batch began writing but did not finish (the process died in between): each goes
        back to its version before the batch (a table the batch created is emptied). Returns the batch id undone.

        The index, golden records, audit and review are written in several commits; without this a rerun would
        see the half-written index as done and never write the golden records and audit rows of those records."""
        if not self.journal_path.exists():
            return None
        pending = json.loads(self.journal_path.read_text(encoding="utf-8"))
        for name, version in pending["versions"].items():
            table = self.table(name)
            if not table.exists() or table.version() == version:
                continue
            table.restore(version, metadata={"empi_batch": str(pending["batch_id"]), "empi_undo": "1"})
        self.finish_batch()
        return str(pending["batch_id"])

    def empty(self, table: str) -> pl.DataFrame:
        return pl.DataFrame(schema=TABLES[table])

    def read(self, table: str) -> pl.DataFrame:
        state = self.table(table)
        if not state.exists():
            return self.empty(table)
        return pl.DataFrame(pl.from_arrow(state.read()))

    def _conform(self, table: str, frame: pl.DataFrame) -> pa.Table:
        return frame.select([pl.col(c).cast(t) for c, t in TABLES[table].items()]).to_arrow()

    def append(self, table: str, frame: pl.DataFrame, batch_id: str = "") -> None:
        if frame.height:
            self.table(table).append(self._conform(table, frame), metadata={"empi_batch": batch_id})

    def upsert(self, table: str, frame: pl.DataFrame, key: str, batch_id: str = "") -> None:
        if frame.height:
            self.table(table).upsert(self._conform(table, frame), key, metadata={"empi_batch": batch_id})

    def upsert_and_delete(
        self, table: str, frame: pl.DataFrame, key: str, remove: list[str], batch_id: str = ""
    ) -> None:
        """Upsert ``frame`` on ``key`` and delete the rows whose key is in ``remove``, in ONE atomic MERGE (each
        MERGE or DELETE rewrites the table's files, so one instead of two halves the cost of a run's write)."""
        if not remove or not frame.height or not self.table(table).exists():
            self.delete(table, key, remove)
            self.upsert(table, frame, key, batch_id)
            return
        self.table(table).upsert(self._conform(table, frame), key, remove=remove, metadata={"empi_batch": batch_id})

    def delete(self, table: str, key: str, values: list[str]) -> None:
        state = self.table(table)
        if values and state.exists():
            state.delete(key, values)
