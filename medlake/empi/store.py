"""The EMPI's Delta tables under one folder, with their schemas and the few writes the index needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import narwhals as nw
import polars as pl
from deltalake import CommitProperties, DeltaTable

from medlake.config import LakePath, is_remote, lake_path
from medlake.empi.features import FEATURE_SCHEMA
from medlake.engine.polars_engine import PolarsEngine, commit_with_retry

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
    """Reads and writes the five EMPI tables below ``root`` (one Delta table per folder)."""

    def __init__(self, root: LakePath | str) -> None:
        self.root = lake_path(root)  # a folder, or an object-store UPath below MEDLAKE_LAKE_URI
        self.engine = PolarsEngine()

    def path(self, table: str) -> str:
        return str(self.root / table)

    @property
    def model_path(self) -> LakePath:
        return self.root / "empi_model.json"

    @property
    def journal_path(self) -> LakePath:
        """Present while a linking batch is being written: the batch and each table's version before it."""
        return self.root / "empi_pending_batch.json"

    def begin_batch(self, batch_id: str, tables: tuple[str, ...]) -> None:
        """Record the versions of ``tables`` before a batch writes them (``finish_batch`` removes the record)."""
        versions = {t: self.engine.version(self.path(t)) for t in tables}
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
        for table, version in pending["versions"].items():
            path = self.path(table)
            if not self.engine.exists(path) or self.engine.version(path) == version:
                continue
            undo = {"empi_batch": str(pending["batch_id"]), "empi_undo": "1"}
            if version is None:
                commit_with_retry(path, lambda p=path, u=undo: DeltaTable(p).delete(
                    commit_properties=CommitProperties(custom_metadata=u)))
            else:
                commit_with_retry(path, lambda p=path, v=version, u=undo: DeltaTable(p).restore(
                    v, commit_properties=CommitProperties(custom_metadata=u)))
        self.finish_batch()
        return str(pending["batch_id"])

    def empty(self, table: str) -> pl.DataFrame:
        return pl.DataFrame(schema=TABLES[table])

    def read(self, table: str) -> pl.DataFrame:
        if not self.engine.exists(self.path(table)):
            return self.empty(table)
        return pl.read_delta(self.path(table))

    def _conform(self, table: str, frame: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(frame.select([pl.col(c).cast(t) for c, t in TABLES[table].items()]).lazy())

    def append(self, table: str, frame: pl.DataFrame, batch_id: str = "") -> None:
        if frame.height:
            self.engine.append(self._conform(table, frame), self.path(table), metadata={"empi_batch": batch_id})

    def upsert(self, table: str, frame: pl.DataFrame, key: str, batch_id: str = "") -> None:
        if frame.height:
            self.engine.merge(
                self._conform(table, frame), self.path(table), keys=(key,), metadata={"empi_batch": batch_id}
            )

    def upsert_and_delete(
        self, table: str, frame: pl.DataFrame, key: str, remove: list[str], batch_id: str = ""
    ) -> None:
        """Upsert ``frame`` on ``key`` and delete the rows whose key is in ``remove``, in ONE atomic MERGE (each
        MERGE or DELETE rewrites the table's files, so one instead of two halves the cost of a run's write)."""
        if not remove or not frame.height or not self.engine.exists(self.path(table)):
            self.delete(table, key, remove)
            self.upsert(table, frame, key, batch_id)
            return
        source = self.engine.to_arrow(self._conform(table, frame))

        def _merge() -> None:
            merger = DeltaTable(self.path(table)).merge(
                source=source,
                predicate=f"t.`{key}` = s.`{key}`", source_alias="s", target_alias="t",
                commit_properties=CommitProperties(custom_metadata={"empi_batch": batch_id}),
            )
            merger.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(
                predicate=f"t.`{key}` IN ({_quoted(remove)})"
            ).execute()

        commit_with_retry(self.path(table), _merge)

    def delete(self, table: str, key: str, values: list[str]) -> None:
        if not values or not self.engine.exists(self.path(table)):
            return
        path = self.path(table)
        commit_with_retry(path, lambda: DeltaTable(path).delete(f"{key} IN ({_quoted(values)})"))


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)
