"""Patient 360: everything the lake holds about one master patient, across institutions, ordered in time.

The EMPI's master index maps a master patient ID to its source records (``institution:patient_id``); encounters
are found by (institution, patient ID), and diagnoses, medications (drug order items), lab results and
settlements by the patients' encounters. Every table is read through one long-lived point reader per process
(:meth:`medlake.engine.base.Engine.point_reader`), and every frame is masked by grade before it is returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa

from medlake.config import Settings
from medlake.engine.base import Engine, PointReader
from medlake.errors import TableNotFoundError
from medlake.services.problems import ServiceError
from medlake.services.protection import Protection
from medlake.services.tokens import Principal

__all__ = ["EVENT_TABLES", "PatientIndex", "PatientView", "json_value"]

_DWD = "dwd"
_IDENTITY_COLUMNS = ("record_id", "source", "name", "id_number", "birth_date", "sex", "phone", "address", "region",
                     "match_score", "match_rule", "linked_at")


@dataclass(frozen=True)
class _EventTable:
    kind: str
    table: str
    time_column: str
    drop: tuple[str, ...] = ("_batch_id", "_loaded_at", "_key_block")


# kind → where its rows live and which column orders them
EVENT_TABLES: tuple[_EventTable, ...] = (
    _EventTable("encounter", "encounter", "admit_time"),
    _EventTable("diagnosis", "diagnosis", "diag_time"),
    _EventTable("medication", "order_item", "order_time"),
    _EventTable("lab_result", "lab_result", "report_time"),
    _EventTable("settlement", "settlement", "setl_time"),
)


def json_value(value: Any) -> Any:
    """A value as JSON shows it: dates and times in ISO 8601, decimals as strings (no float rounding)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dicts()]


@dataclass
class PatientView:
    master_id: str
    golden_record: dict[str, Any]
    identities: list[dict[str, Any]]
    events: list[dict[str, Any]]
    total_events: int
    unmasked: list[str] = field(default_factory=list)
    grants_used: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return 1 + len(self.identities) + len(self.events)


class PatientIndex:
    """Point reads of the patient-keyed DWD tables, one reader per table kept for the process."""

    def __init__(self, engine: Engine, settings: Settings, protection: Protection) -> None:
        self.engine = engine
        self.settings = settings
        self.protection = protection
        self._readers: dict[str, PointReader] = {}
        self._lock = threading.Lock()

    def _reader(self, table: str) -> PointReader:
        with self._lock:
            reader = self._readers.get(table)
            if reader is None:
                path = str(self.settings.table_path(_DWD, table))
                try:
                    reader = self.engine.point_reader(path)
                except TableNotFoundError:
                    raise ServiceError(503, "Lake table missing", f"{_DWD}.{table} does not exist yet") from None
                self._readers[table] = reader
            return reader

    def _rows(self, table: str, where: dict[str, Iterable[Any]]) -> pl.DataFrame:
        if any(not list(values) for values in where.values()):
            return pl.DataFrame()
        found = self._reader(table).rows(where)
        return pl.from_arrow(found) if isinstance(found, pa.Table) else pl.DataFrame(found)  # type: ignore[return-value]

    def _mask(self, frame: pl.DataFrame, table: str, principal: Principal, view: PatientView) -> pl.DataFrame:
        if frame.is_empty():
            return frame
        result = self.protection.mask(frame, f"{_DWD}.{table}", principal)
        qualified = [f"{_DWD}.{table}.{column}" for column in result.unmasked]
        view.unmasked.extend(c for c in qualified if c not in view.unmasked)
        view.grants_used.extend(g for g in result.grants_used if g not in view.grants_used)
        return result.frame

    def view(self, master_id: str, principal: Principal, *, limit: int, offset: int) -> PatientView:
        """The patient's golden record, source identities and one page of events (oldest first)."""
        golden = self._rows("golden_record", {"master_id": [master_id]})
        if golden.is_empty():
            raise ServiceError(404, "Not found", f"no master patient {master_id!r}")
        index = self._rows("master_patient_index", {"master_id": [master_id]})
        identities = index.select([c for c in _IDENTITY_COLUMNS if c in index.columns]).sort("record_id")
        view = PatientView(master_id, {}, [], [], 0)
        events = self._events(identities, principal, view)
        total = len(events)
        view.golden_record = _records(self._mask(golden.drop("master_id").head(1), "golden_record", principal,
                                                 view))[0]
        view.golden_record["master_id"] = master_id
        view.identities = _records(self._mask(identities, "master_patient_index", principal, view))
        view.events = events[offset:offset + limit]
        view.total_events = total
        return view

    def _events(self, identities: pl.DataFrame, principal: Principal, view: PatientView) -> list[dict[str, Any]]:
        pairs = [tuple(r.split(":", 1)) for r in identities["record_id"].to_list() if ":" in r]
        institutions = sorted({p[0] for p in pairs})
        encounters = self._rows("encounter", {"institution_code": institutions,
                                              "patient_id": sorted({p[1] for p in pairs})})
        if not encounters.is_empty():
            keep = pl.struct("institution_code", "patient_id").is_in(
                pl.DataFrame({"institution_code": [p[0] for p in pairs], "patient_id": [p[1] for p in pairs]})
                .to_struct().implode())
            encounters = encounters.filter(keep)
        visit_ids = sorted(set(encounters["encounter_id"].to_list())) if not encounters.is_empty() else []
        frames = {"encounter": encounters}
        by_visit = {"institution_code": institutions, "encounter_id": visit_ids}
        frames["diagnosis"] = self._rows("diagnosis", by_visit)
        orders = self._rows("order_item", by_visit)
        frames["order_item"] = orders.filter(pl.col("item_category") == "drug") if not orders.is_empty() else orders
        frames["lab_result"] = self._rows("lab_result", by_visit)
        frames["settlement"] = self._rows("settlement", {"medins_code": institutions, "encounter_id": visit_ids})
        events: list[tuple[datetime, int, dict[str, Any]]] = []
        for order, spec in enumerate(EVENT_TABLES):
            frame = frames[spec.table]
            if frame.is_empty():
                continue
            if spec.table != "encounter":
                owner = "medins_code" if spec.table == "settlement" else "institution_code"
                frame = frame.join(encounters.select(pl.col("institution_code").alias(owner), "encounter_id"),
                                   on=[owner, "encounter_id"], how="semi")
            when = frame[spec.time_column].to_list()
            masked = self._mask(frame.drop([c for c in spec.drop if c in frame.columns]), spec.table, principal, view)
            for moment, record in zip(when, _records(masked), strict=True):
                # shown: the time as masked for this caller; ordered by the stored time
                events.append((moment or datetime.max, order, {"kind": spec.kind, "table": f"{_DWD}.{spec.table}",
                                                               "time": record.get(spec.time_column),
                                                               "record": record}))
        events.sort(key=lambda e: (e[0], e[1]))
        return [e[2] for e in events]
