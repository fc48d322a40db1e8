"""The EMPI's Delta tables under one folder, with their schemas and the few writes the index needs."""

from __future__ import annotations

from datetime import UTC, datetime

import narwhals as nw
import polars as pl
from deltalake import CommitProperties, DeltaTable

from medlake.config import LakePath, lake_path
from medlake.empi.features import FEATURE_SCHEMA
from medlake.engine.polars_engine import PolarsEngine

__all__ = ["TABLES", "EmpiStore", "utc_now"]

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
        merger = DeltaTable(self.path(table)).merge(
            source=self.engine.to_arrow(self._conform(table, frame)),
            predicate=f"t.`{key}` = s.`{key}`", source_alias="s", target_alias="t",
            commit_properties=CommitProperties(custom_metadata={"empi_batch": batch_id}),
        )
        merger.when_matched_update_all().when_not_matched_insert_all().when_not_matched_by_source_delete(
            predicate=f"t.`{key}` IN ({_quoted(remove)})"
        ).execute()

    def delete(self, table: str, key: str, values: list[str]) -> None:
        if not values or not self.engine.exists(self.path(table)):
            return
        DeltaTable(self.path(table)).delete(f"{key} IN ({_quoted(values)})")


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)
