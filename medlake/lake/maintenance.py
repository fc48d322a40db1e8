"""Table maintenance: OPTIMIZE (compaction, Z-order on lookup keys), VACUUM inside the time-travel window, and
checkpoints with log cleanup, for every Delta table of the lake, on whichever engine the lake runs.

- Z-order keys come from the specs: a DWD table is clustered by its business key's identifier columns (and
  ``patient_id`` where it refers to a patient), an EMPI table by ``master_id``; other tables are compacted.
- ODS tables are not optimized (only vacuumed and checkpointed): each load is one file, and the DWD's incremental
  read (``_ods_seq`` > watermark) skips every file of earlier loads by its statistics. Compacting them into one file
  made that skipping impossible (``python -m medlake.bench maintenance``, before this rule: point lookups on
  ``ods/settlement`` 0.07 s -> 0.19 s after 30 daily files became one).
- VACUUM keeps every data file that a version committed inside ``Settings.time_travel_days``
  (``MEDLAKE_TIME_TRAVEL_DAYS``, default 7) reads, and never less than the table's own
  ``delta.deletedFileRetentionDuration``; log cleanup keeps at least the same window.
- Every commit maintenance makes carries the custom metadata of the table's newest commit, so a DWD watermark
  (``medlake.ods_seq``, read from the newest commit) is the same after maintenance as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from medlake.config import LakePath, Settings, subfolders
from medlake.empi.store import TABLES as EMPI_TABLES
from medlake.engine.base import Engine
from medlake.errors import TableNotFoundError
from medlake.layers import Layer
from medlake.sources import SOURCES, SourceTable

__all__ = [
    "LOOKUP_ROW_GROUP_ROWS",
    "PATIENT_LOOKUP_KEYS",
    "MaintenanceTarget",
    "TableMaintenance",
    "lake_tables",
    "layout_for_lookups",
    "maintain_lake",
    "maintain_table",
    "zorder_columns",
]

_MAX_DEPTH = 3  # folders searched below a layer for tables
_LOAD_ORDERED_LAYERS = frozenset({Layer.ODS.value})  # not optimized, see the module docstring
_PATIENT_REFERENCE = "patient_id"
_MASTER_ID = "master_id"
# commitInfo fields the engines write themselves: not carried into maintenance commits
_ENGINE_COMMIT_FIELDS = frozenset({"operation", "clientVersion", "engineInfo", "isolationLevel", "txnId", "userId",
                                   "userName", "userMetadata"})


def _dwd_lookup_columns(spec: SourceTable) -> tuple[str, ...]:
    identifiers = tuple(c for c in spec.business_key if spec.column(c).dtype == "string")
    refers_to_patient = _PATIENT_REFERENCE in spec.column_names and _PATIENT_REFERENCE not in identifiers
    return identifiers + ((_PATIENT_REFERENCE,) if refers_to_patient else ())


_ZORDER: dict[tuple[str, str], tuple[str, ...]] = {
    (Layer.DWD.value, spec.name): _dwd_lookup_columns(spec) for spec in SOURCES
}
_EMPI_ZORDER: dict[str, tuple[str, ...]] = {
    name: (_MASTER_ID,) for name, schema in EMPI_TABLES.items() if _MASTER_ID in schema
}


def zorder_columns(layer: str, name: str) -> tuple[str, ...]:
    """The columns point lookups on ``layer/name`` filter by (Z-order keys); () for compaction only. An EMPI table
    is recognized by its own name wherever its store is (``dwd/``, a workflow's folder)."""
    return _ZORDER.get((layer, name)) or _EMPI_ZORDER.get(name.rsplit("/", 1)[-1], ())


@dataclass(frozen=True)
class MaintenanceTarget:
    layer: str
    name: str
    path: str
    zorder: tuple[str, ...] = ()
    optimize: bool = True  # False: vacuum and checkpoint only

    @property
    def table(self) -> str:
        return f"{self.layer}/{self.name}"


@dataclass
class TableMaintenance:
    """What maintenance did to one table (or, in a dry run, would do: no ``*_after`` figures, files listed)."""

    table: str
    dry_run: bool
    optimize: bool
    zorder: list[str]
    retention_hours: int
    files_before: int
    bytes_before: int
    version_before: int
    files_after: int | None = None
    bytes_after: int | None = None
    version_after: int | None = None
    files_vacuumed: int = 0
    vacuumed: list[str] = field(default_factory=list)
    checkpoint_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tables_below(folder: LakePath, depth: int) -> list[LakePath]:
    """Delta tables at or below ``folder`` (a table is a folder with a ``_delta_log``; nothing below it is)."""
    if (folder / "_delta_log").exists():
        return [folder]
    return [t for sub in subfolders(folder) for t in _tables_below(sub, depth - 1)] if depth > 0 else []


def lake_tables(settings: Settings, only: Sequence[str] = ()) -> list[MaintenanceTarget]:
    """Every Delta table of the lake (``<layer>/<name>``, or deeper, as a workflow's EMPI store
    ``governance/<workflow>/master_patient_index``), or those named ``LAYER/NAME`` in ``only``."""
    targets = []
    for layer in subfolders(settings.lake):
        for table in _tables_below(layer, _MAX_DEPTH):
            name = str(table)[len(str(layer)):].strip("/")
            targets.append(MaintenanceTarget(layer.name, name, str(table), zorder_columns(layer.name, name),
                                             optimize=layer.name not in _LOAD_ORDERED_LAYERS))
    if not only:
        return targets
    by_name = {t.table: t for t in targets}
    missing = [name for name in only if name.strip("/") not in by_name]
    if missing:
        raise TableNotFoundError(f"no Delta table {', '.join(missing)} in {settings.lake} "
                                 f"(tables are named LAYER/NAME, e.g. dwd/settlement)")
    return [by_name[name.strip("/")] for name in only]


def _carried_metadata(engine: Engine, path: str) -> dict[str, str]:
    return {k: v for k, v in engine.commit_metadata(path).items() if k not in _ENGINE_COMMIT_FIELDS}


def maintain_table(
    engine: Engine,
    settings: Settings,
    target: MaintenanceTarget,
    *,
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
) -> TableMaintenance:
    """OPTIMIZE (Z-order when the table has lookup keys; skipped for ``optimize=False``), VACUUM with the
    time-travel window as retention, then a checkpoint and log cleanup. ``dry_run`` changes nothing and lists the
    files VACUUM would delete."""
    before = engine.table_stats(target.path)
    report = TableMaintenance(target.table, dry_run, target.optimize, list(target.zorder),
                              settings.time_travel_hours, before.files, before.bytes, before.version)
    metadata = _carried_metadata(engine, target.path)
    if target.optimize and not dry_run:
        engine.optimize(target.path, zorder=target.zorder, metadata=metadata)
    report.vacuumed = engine.vacuum(target.path, retention_hours=settings.time_travel_hours, dry_run=dry_run,
                                    enforce_retention_duration=enforce_retention_duration, metadata=metadata)
    report.files_vacuumed = len(report.vacuumed)
    if dry_run:
        return report
    engine.checkpoint(target.path, log_retention_hours=settings.time_travel_hours, metadata=metadata)
    after = engine.table_stats(target.path)
    report.files_after, report.bytes_after, report.version_after = after.files, after.bytes, after.version
    report.checkpoint_version = after.version
    return report


def maintain_lake(
    engine: Engine,
    settings: Settings,
    *,
    tables: Sequence[str] = (),
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
) -> list[TableMaintenance]:
    """:func:`maintain_table` for every table of the lake (or those named ``LAYER/NAME`` in ``tables``)."""
    return [
        maintain_table(engine, settings, target, dry_run=dry_run,
                       enforce_retention_duration=enforce_retention_duration)
        for target in lake_tables(settings, tables)
    ]


LOOKUP_ROW_GROUP_ROWS = 8192
"""Row-group size of tables laid out for point lookups: on 2M rows, a patient lookup on an unsorted Delta table
took p95 ≈ 190–210 ms, Z-ordered with 8,192-row groups ≈ 17 ms (issue 15)."""

# the patient-keyed tables patient 360 reads, and the column each is looked up by
PATIENT_LOOKUP_KEYS: dict[str, tuple[str, ...]] = {
    "dwd/golden_record": (_MASTER_ID,), "dwd/master_patient_index": (_MASTER_ID,),
    "dwd/encounter": (_PATIENT_REFERENCE,), "dwd/diagnosis": ("encounter_id",), "dwd/order_item": ("encounter_id",),
    "dwd/lab_result": ("encounter_id",), "dwd/settlement": ("encounter_id",),
}


def layout_for_lookups(
    engine: Engine, settings: Settings, *, row_group_rows: int = LOOKUP_ROW_GROUP_ROWS,
    keys: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Z-order each patient-keyed table (``LAYER/NAME`` → lookup columns; default :data:`PATIENT_LOOKUP_KEYS`) on
    its lookup columns with small row groups, carrying the newest commit's metadata (a DWD watermark) over. Tables
    not in the lake are skipped; returns what was laid out."""
    done = {}
    for table, columns in (keys or PATIENT_LOOKUP_KEYS).items():
        path = str(settings.lake / table)
        if not engine.exists(path):
            continue
        engine.cluster(path, columns, row_group_rows=row_group_rows, metadata=_carried_metadata(engine, path))
        done[table] = columns
    return done
