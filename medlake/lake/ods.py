"""ODS: land each delivered file in Delta exactly as delivered (text), plus load columns.

A file is identified by its SHA-256: a file already landed is never landed again (idempotent re-ingest).
Unreadable files and rows go to quarantine with file, line, field and reason; the rest of the batch loads.
Each landed file is reconciled against its manifest (row count and amount sums) in the load log.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.errors import MedlakeError
from medlake.lake.crashpoints import crash_point
from medlake.lake.locks import table_lock
from medlake.lake.manifest import MANIFEST_NAME, Manifest, ManifestFile, file_sha256, read_manifest
from medlake.lake.quarantine import Rejected, write_quarantine
from medlake.sources import SourceTable

__all__ = [
    "FileLoad",
    "OdsLoadReport",
    "load_log_path",
    "load_source_table",
    "ods_path",
    "parse_delivery",
    "pending_batches",
]

_LINE = "_source_line"


@dataclass
class FileLoad:
    """What happened to one delivered file: the load log row."""

    institution: str
    batch_id: str
    table: str
    source_file: str
    file_sha256: str
    manifest_rows: int
    rows_loaded: int = 0
    rows_quarantined: int = 0
    status: str = "loaded"  # loaded | reconciled | mismatch | rejected | skipped
    message: str = ""
    manifest_sums: dict[str, str] = field(default_factory=dict)
    loaded_sums: dict[str, str] = field(default_factory=dict)


@dataclass
class OdsLoadReport:
    table: str
    files: list[FileLoad] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def files_loaded(self) -> int:
        return sum(f.status != "skipped" for f in self.files)

    @property
    def files_skipped(self) -> int:
        return sum(f.status == "skipped" for f in self.files)


def ods_path(settings: Settings, table: str) -> str:
    return str(settings.table_path("ods", table))


def load_log_path(settings: Settings, table: str) -> str:
    return str(settings.lake / "audit" / f"ods_loads_{table}")


def pending_batches(settings: Settings) -> list[Path]:
    """Complete batch folders (manifest present), oldest business date first."""
    if not settings.landing.exists():
        return []
    folders = [m.parent for m in settings.landing.glob(f"*/*/{MANIFEST_NAME}")]
    return sorted(folders, key=lambda p: (p.name, p.parent.name))


# --------------------------------------------------------------------------------------------------- parsing


def _decode_lines(raw: bytes, encoding: str) -> tuple[list[str], list[Rejected]]:
    """Split into physical lines; a line that does not decode is refused, the others kept (numbering kept)."""
    try:
        return raw.decode(encoding).split("\n"), []
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    rejected: list[Rejected] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(chunk.decode(encoding))
        except UnicodeDecodeError as exc:
            rejected.append(
                Rejected(number, "", f"bytes {exc.start}-{exc.end} are not valid {encoding}",
                         chunk.decode(encoding, errors="replace"))
            )
            lines.append("")
    return lines, rejected


def _parse_csv(raw: bytes, encoding: str, spec: SourceTable, name: str) -> tuple[pa.Table, list[Rejected]]:
    lines, rejected = _decode_lines(raw, encoding)
    header = [h.strip() for h in lines[0].lstrip("\ufeff").rstrip("\r").split(",")] if lines else []
    missing = [c.name for c in spec.columns if c.required and c.name not in header]
    if missing:
        raise _FileRejected(f"{name}: header lacks required column(s) {', '.join(missing)}", field=missing[0])
    # Prefix every physical line with its number so refused rows and landed rows keep their line.
    body = "\n".join(f"{n},{text}" for n, text in enumerate(lines[1:], start=2) if text.strip())
    bad: list[Rejected] = []
    expected = len(header) + 1

    def _invalid(row: pacsv.InvalidRow) -> str:
        number, _, text = row.text.partition(",")
        reason = f"expected {expected - 1} fields, found {row.actual_columns - 1}"
        bad.append(Rejected(int(number) if number.isdigit() else 0, "", reason, text))
        return "skip"

    names = [_LINE, *header]
    table = pacsv.read_csv(
        io.BytesIO(body.encode("utf-8")),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=True),
        parse_options=pacsv.ParseOptions(invalid_row_handler=_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: (pa.int64() if n == _LINE else pa.string()) for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    ) if body else pa.table({n: pa.array([], pa.int64() if n == _LINE else pa.string()) for n in names})
    return table, rejected + bad


def _parse_jsonl(raw: bytes, encoding: str, spec: SourceTable, name: str) -> tuple[pa.Table, list[Rejected]]:
    lines, rejected = _decode_lines(raw, encoding)
    records: list[dict[str, object]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            rejected.append(Rejected(number, "", f"not valid JSON: {exc.msg} at column {exc.colno}", text))
            continue
        if not isinstance(obj, dict):
            rejected.append(Rejected(number, "", "a JSON line must be an object", text))
            continue
        row = {k: (None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
               for k, v in obj.items()}
        row[_LINE] = number
        records.append(row)
    names = [_LINE, *spec.column_names]
    schema = pa.schema([(n, pa.int64() if n == _LINE else pa.string()) for n in names])
    return pa.Table.from_pylist(records, schema=schema), rejected


class _FileRejected(Exception):
    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


_PARSERS = {"csv": _parse_csv, "jsonl": _parse_jsonl}


def parse_delivery(path: Path, entry: ManifestFile, spec: SourceTable) -> tuple[pa.Table, list[Rejected]]:
    """Read one delivered file as text columns of ``spec`` plus ``_source_line``; refused lines on the side.

    Raises ``_FileRejected`` when the whole file is unusable (wrong checksum, unknown format, missing header).
    """
    try:
        parser = _PARSERS[entry.format]
    except KeyError:
        raise _FileRejected(f"unknown format {entry.format!r}; expected csv or jsonl", field="format") from None
    raw = path.read_bytes()
    table, rejected = parser(raw, entry.encoding, spec, path.name)
    columns = {n: table.column(n) if n in table.column_names else pa.nulls(table.num_rows, pa.string())
               for n in spec.column_names}
    columns[_LINE] = table.column(_LINE)
    # Required fields that are empty make a row unusable as delivered: refuse it with the field named.
    return _split_required(pa.table(columns), spec, rejected)


def _split_required(table: pa.Table, spec: SourceTable, rejected: list[Rejected]) -> tuple[pa.Table, list[Rejected]]:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    missing_key = [k for k in spec.business_key]
    bad_mask = pl.any_horizontal([pl.col(k).is_null() | (pl.col(k).str.strip_chars() == "") for k in missing_key])
    bad = frame.filter(bad_mask)
    for row in bad.iter_rows(named=True):
        empty = next(k for k in missing_key if row[k] is None or not str(row[k]).strip())
        raw = json.dumps({k: v for k, v in row.items() if k != _LINE}, ensure_ascii=False)
        rejected.append(Rejected(int(row[_LINE]), empty, f"business key field {empty} is empty", raw))
    return frame.filter(~bad_mask).to_arrow(), rejected


# --------------------------------------------------------------------------------------------------- loading


def _shas(engine: Engine, path: str, column: str) -> set[str]:
    if not engine.exists(path):
        return set()
    return set(pl.scan_delta(path).select(pl.col(column).unique()).collect().to_series().to_list())


def _sums(table: pa.Table, columns: tuple[str, ...]) -> dict[str, str]:
    if not columns or table.num_rows == 0:
        return {c: "0.0000" for c in columns}
    frame = pl.from_arrow(table.select(list(columns)))
    assert isinstance(frame, pl.DataFrame)
    sums = frame.select(pl.col(c).cast(pl.Decimal(28, 4), strict=False).sum() for c in columns).row(0)
    return {c: f"{v:.4f}" if v is not None else "0.0000" for c, v in zip(columns, sums, strict=True)}


def _reconcile(load: FileLoad, spec: SourceTable) -> None:
    rows_ok = load.rows_loaded + load.rows_quarantined == load.manifest_rows
    sums_ok = all(
        f"{float(load.manifest_sums.get(c, 0)):.4f}" == f"{float(load.loaded_sums.get(c, 0)):.4f}"
        for c in spec.amount_columns
    )
    if rows_ok and sums_ok:
        load.status = "reconciled"
        return
    load.status = "mismatch"
    notes = []
    if not rows_ok:
        notes.append(f"manifest rows {load.manifest_rows} != loaded {load.rows_loaded} + quarantined "
                     f"{load.rows_quarantined}")
    if not sums_ok:
        notes.append(f"amount sums differ (manifest {load.manifest_sums}, loaded {load.loaded_sums}; "
                     "quarantined rows are not in the loaded sums)")
    load.message = "; ".join(notes)


@dataclass
class _Pending:
    """Parsed files waiting to be committed together: one ODS append and one quarantine write per flush."""

    tables: list[pa.Table] = field(default_factory=list)
    rejected: list[pa.Table] = field(default_factory=list)
    rows: int = 0


_FLUSH_ROWS = 1_000_000  # rows of parsed text held in memory before they are committed


def _with_provenance(rows: list[Rejected], provenance: dict[str, str]) -> pa.Table:
    table = pa.Table.from_pylist([asdict(r) for r in rows]) if rows else pa.table({})
    for name, value in provenance.items():
        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def _land_file(
    settings: Settings, spec: SourceTable, folder: Path, manifest: Manifest, entry: ManifestFile,
    already_in_ods: bool, pending: _Pending,
) -> FileLoad:
    """Check and parse one file; its rows and refused records join ``pending`` (committed by ``_flush``)."""
    path = folder / entry.file
    rel = str(path.relative_to(settings.landing)) if path.is_relative_to(settings.landing) else str(path)
    load = FileLoad(manifest.institution, manifest.batch_id, spec.name, rel, entry.sha256, entry.rows,
                    manifest_sums=dict(entry.sums))
    provenance = {"institution": manifest.institution, "batch_id": manifest.batch_id, "source_file": rel,
                  "file_sha256": entry.sha256}
    try:
        if not path.exists():
            raise _FileRejected(f"{rel}: listed in the manifest but not delivered", field="file")
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise _FileRejected(f"{rel}: checksum {actual[:12]}… does not match manifest {entry.sha256[:12]}…",
                                field="sha256")
        table, rejected = parse_delivery(path, entry, spec)
    except _FileRejected as exc:
        pending.rejected.append(_with_provenance([Rejected(0, exc.field, exc.reason)], provenance))
        load.status, load.message = "rejected", exc.reason
        return load
    if not already_in_ods and table.num_rows:
        n = table.num_rows
        loaded = table.append_column("_institution", pa.array([manifest.institution] * n, pa.string()))
        for name, value in (("_batch_id", manifest.batch_id), ("_source_file", rel), ("_file_sha256", entry.sha256)):
            loaded = loaded.append_column(name, pa.array([value] * n, pa.string()))
        pending.tables.append(loaded)
        pending.rows += n
    if rejected:
        pending.rejected.append(_with_provenance(rejected, provenance))
    load.rows_loaded = table.num_rows
    load.rows_quarantined = len(rejected)
    load.loaded_sums = _sums(table, spec.amount_columns)
    _reconcile(load, spec)
    return load


def _flush(engine: Engine, settings: Settings, spec: SourceTable, pending: _Pending) -> None:
    """Commit the pending rows as one ODS append (one ``_ods_seq``), then their refused records."""
    if pending.tables:
        target = ods_path(settings, spec.name)
        current = engine.version(target)
        loaded = pa.concat_tables(pending.tables, promote_options="default")
        n = loaded.num_rows
        loaded = loaded.append_column("_loaded_at", pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")))
        loaded = loaded.append_column("_ods_seq", pa.array([0 if current is None else current + 1] * n, pa.int64()))
        files = len({*loaded.column("_file_sha256").to_pylist()})
        crash_point("ods.append.before_commit")
        engine.append(engine.from_arrow(loaded), target, metadata={"medlake.files": str(files)})
        crash_point("ods.append.after_commit")
    if pending.rejected:
        crash_point("ods.quarantine.before_commit")
        write_quarantine(engine, settings, layer="ods", table=spec.name,
                         rows=pa.concat_tables(pending.rejected, promote_options="default"))
        crash_point("ods.quarantine.after_commit")
    pending.tables, pending.rejected, pending.rows = [], [], 0


def _write_load_log(engine: Engine, settings: Settings, table: str, loads: list[FileLoad]) -> None:
    rows = []
    for load in loads:
        row = asdict(load)
        row["manifest_sums"] = json.dumps(load.manifest_sums, sort_keys=True)
        row["loaded_sums"] = json.dumps(load.loaded_sums, sort_keys=True)
        row["logged_at"] = datetime.now(UTC)
        rows.append(row)
    if rows:
        crash_point("ods.load_log.before_commit")
        engine.merge(engine.from_arrow(pa.Table.from_pylist(rows)), load_log_path(settings, table),
                     keys=("file_sha256",))
        crash_point("ods.load_log.after_commit")


def load_source_table(engine: Engine, settings: Settings, spec: SourceTable) -> OdsLoadReport:
    """Land every not-yet-landed delivered file of one source table, in business-date order.

    A file is done once its load-log row exists. A file whose rows reached ODS but whose log row did not (a crash
    in between) is not appended again: only its quarantine and log rows are completed. The table's write lock is
    held throughout, so a concurrent load of the same table waits and then finds the files already landed.
    """
    with table_lock(settings, f"ods/{spec.name}"):
        return _load_unlanded(engine, settings, spec)


def _load_unlanded(engine: Engine, settings: Settings, spec: SourceTable) -> OdsLoadReport:
    report = OdsLoadReport(spec.name)
    done = _shas(engine, load_log_path(settings, spec.name), "file_sha256")
    in_ods = _shas(engine, ods_path(settings, spec.name), "_file_sha256")
    pending = _Pending()
    for folder in pending_batches(settings):
        try:
            manifest = read_manifest(folder)
        except MedlakeError as exc:  # a broken manifest blocks only its own batch
            write_quarantine(engine, settings, layer="ods", table=spec.name,
                             rows=[Rejected(0, "manifest", str(exc))], source_file=str(folder / MANIFEST_NAME),
                             file_sha256=f"manifest:{folder.name}:{folder.parent.name}")
            continue
        for entry in manifest.files:
            if entry.table != spec.name:
                continue
            if entry.sha256 in done:
                report.files.append(FileLoad(manifest.institution, manifest.batch_id, spec.name, entry.file,
                                             entry.sha256, entry.rows, status="skipped"))
                continue
            report.files.append(_land_file(settings, spec, folder, manifest, entry,
                                           already_in_ods=entry.sha256 in in_ods, pending=pending))
            done.add(entry.sha256)
            if pending.rows >= _FLUSH_ROWS:
                _flush(engine, settings, spec, pending)
    _flush(engine, settings, spec, pending)
    _write_load_log(engine, settings, spec.name, [f for f in report.files if f.status != "skipped"])
    return report
