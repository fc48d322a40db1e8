"""ODS: land each delivered file in Delta exactly as delivered (text), plus load columns.

A file is identified by its SHA-256: a file already landed is never landed again (idempotent re-ingest).
Unreadable files and rows go to quarantine with file, line, field and reason; the rest of the batch loads.
Each landed file is reconciled against its manifest (row count and amount sums) in the load log.

Bad input is refused before it is read: a manifest's ``file`` must name a regular file inside its batch folder
(no absolute path, no ``..``, no symlink leading out), no larger than ``Settings.max_file_bytes``
(``MEDLAKE_MAX_FILE_BYTES``; files are parsed in memory, so larger ones are refused rather than streamed), and a
batch folder ``landing/<institution>/<date>/`` must carry a manifest of that institution and business date.
A manifest's checksum is a claim until the file's bytes are hashed: an entry refused before that (``refused``: bad
name, checksum mismatch; ``too_large``; ``missing``, listed but not delivered yet) marks no checksum done, so it is
checked again on the next run and cannot block the real file of that checksum.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.errors import MedlakeError
from medlake.lake.crashpoints import crash_point
from medlake.lake.locks import table_lock
from medlake.lake.manifest import MANIFEST_NAME, Manifest, ManifestFile, read_manifest
from medlake.lake.quarantine import Rejected, write_quarantine
from medlake.sources import SourceTable

__all__ = [
    "LANDED",
    "RETRIED",
    "FileLoad",
    "OdsLoadReport",
    "ParsedDelivery",
    "load_log_path",
    "load_source_table",
    "ods_path",
    "parse_delivery",
    "pending_batches",
]

_LINE = "_source_line"
LANDED = frozenset({"loaded", "reconciled", "mismatch"})  # load-log statuses of a file whose rows reached ODS
RETRIED = ("refused", "missing", "too_large")  # load-log statuses of an entry checked again on the next run


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
    status: str = "loaded"  # loaded | reconciled | mismatch | rejected | refused | missing | too_large | skipped
    message: str = ""
    manifest_sums: dict[str, str] = field(default_factory=dict)
    loaded_sums: dict[str, str] = field(default_factory=dict)


@dataclass
class OdsLoadReport:
    table: str
    files: list[FileLoad] = field(default_factory=list)
    batches_refused: list[str] = field(default_factory=list)  # reasons, one per refused batch folder

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


@dataclass
class ParsedDelivery:
    """One delivered file read as text columns of its table plus ``_source_line``."""

    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)  # refused rows: counted in the reconciliation
    dropped: list[Rejected] = field(default_factory=list)  # columns outside the contract: quarantined, rows land
    notes: list[str] = field(default_factory=list)  # load-log remarks (optional columns not delivered, empty file)


# A UTF-8 encoded CJK character: three bytes, E4-E9 then two continuation bytes.
_UTF8_CJK = re.compile(rb"[\xe4-\xe9][\x80-\xbf]{2}")
_GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030"})


def _looks_utf8(chunk: bytes) -> bool:
    """True for a line that is valid UTF-8 whose every non-ASCII character is CJK (ideographs, CJK punctuation,
    full-width forms). GBK text almost never passes: its two-byte characters would have to line up as whole
    three-byte UTF-8 sequences all along every field."""
    if not _UTF8_CJK.search(chunk):
        return False
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all("\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in text if c > "\x7f")


def _decode_lines(raw: bytes, encoding: str) -> tuple[list[str], list[Rejected]]:
    """Split into physical lines; a line that does not decode is refused, the others kept (numbering kept).

    In a GBK file a line that is UTF-8 text is refused too: it would decode as GBK into wrong characters."""
    foreign_check = codecs.lookup(encoding).name in _GB_FAMILY and _UTF8_CJK.search(raw) is not None
    if not foreign_check:
        try:
            return raw.decode(encoding).split("\n"), []
        except UnicodeDecodeError:
            pass
    lines: list[str] = []
    rejected: list[Rejected] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if foreign_check and _looks_utf8(chunk):
            rejected.append(Rejected(number, "", f"line is UTF-8 text in a file declared {encoding}",
                                     chunk.decode("utf-8")))
            lines.append("")
            continue
        try:
            lines.append(chunk.decode(encoding))
        except UnicodeDecodeError as exc:
            rejected.append(
                Rejected(number, "", f"bytes {exc.start}-{exc.end} are not valid {encoding}",
                         chunk.decode(encoding, errors="replace"))
            )
            lines.append("")
    return lines, rejected


def _empty(names: list[str]) -> pa.Table:
    return pa.table({n: pa.array([], pa.int64() if n == _LINE else pa.string()) for n in names})


def _outside_contract(name: str, spec: SourceTable, line: int) -> Rejected:
    return Rejected(line, name, f"column {name!r} is not in the {spec.name} landing contract: its values were not "
                                "landed")


def _parse_csv(raw: bytes, encoding: str, spec: SourceTable, name: str) -> ParsedDelivery:
    lines, rejected = _decode_lines(raw, encoding)
    header = [h.strip() for h in lines[0].lstrip("\ufeff").rstrip("\r").split(",")] if lines else []
    missing = [c.name for c in spec.columns if c.required and c.name not in header]
    if missing:
        raise _FileRejected(f"{name}: header lacks required column(s) {', '.join(missing)}", field=missing[0])
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise _FileRejected(f"{name}: header repeats column(s) {', '.join(repeated)}", field=repeated[0])
    known = set(spec.column_names)
    parsed = ParsedDelivery(pa.table({}), dropped=[_outside_contract(h, spec, 1) for h in header if h not in known])
    absent = [c for c in spec.column_names if c not in header]
    if absent:
        parsed.notes.append(f"header lacks optional column(s) {', '.join(absent)}: landed empty")
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
    parsed.table = pacsv.read_csv(
        io.BytesIO(body.encode("utf-8")),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=True),
        parse_options=pacsv.ParseOptions(invalid_row_handler=_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: (pa.int64() if n == _LINE else pa.string()) for n in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    ) if body else _empty(names)
    parsed.rejected = rejected + bad
    return parsed


def _parse_jsonl(raw: bytes, encoding: str, spec: SourceTable, name: str) -> ParsedDelivery:
    lines, rejected = _decode_lines(raw, encoding)
    if lines:
        lines[0] = lines[0].lstrip("\ufeff")
    records: list[dict[str, object]] = []
    known = set(spec.column_names)
    unknown: dict[str, int] = {}  # key outside the contract → first line it appears on
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
        for key in row.keys() - known:
            unknown.setdefault(key, number)
        row[_LINE] = number
        records.append(row)
    names = [_LINE, *spec.column_names]
    schema = pa.schema([(n, pa.int64() if n == _LINE else pa.string()) for n in names])
    return ParsedDelivery(pa.Table.from_pylist(records, schema=schema), rejected,
                          [_outside_contract(k, spec, line) for k, line in sorted(unknown.items())])


class _FileRejected(Exception):
    """A whole file is not landed: its bytes match the manifest's checksum but cannot be used (final)."""

    def __init__(self, reason: str, field: str = "", status: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.status = status


class _Refused(_FileRejected):
    """A listed file refused before its bytes were verified against the manifest's checksum (bad name, not a
    regular file, too large, missing, checksum mismatch). The checksum is only a claim then: it marks nothing done,
    so a wrong entry cannot block the real file, and the entry is checked again on every run. A ``missing`` file is
    not quarantined (nothing was refused)."""

    def __init__(self, reason: str, field: str = "file", status: str = "refused") -> None:
        super().__init__(reason, field, status)


_PARSERS = {"csv": _parse_csv, "jsonl": _parse_jsonl}


def parse_delivery(raw: bytes, entry: ManifestFile, spec: SourceTable, name: str) -> ParsedDelivery:
    """Read one delivered file (its bytes, ``name`` for messages) as text columns of ``spec`` plus
    ``_source_line``; refused lines and columns on the side.

    Raises ``_FileRejected`` when the whole file is unusable (unknown format or encoding, missing header).
    """
    try:
        parser = _PARSERS[entry.format]
    except KeyError:
        raise _FileRejected(f"{name}: unknown format {entry.format!r}; expected csv or jsonl",
                            field="format") from None
    try:
        codecs.lookup(entry.encoding)
    except (LookupError, TypeError):
        raise _FileRejected(f"{name}: unknown encoding {entry.encoding!r}", field="encoding") from None
    if not raw.strip():  # 0 bytes: nothing to land or refuse; the reconciliation compares with the manifest's rows
        return ParsedDelivery(_empty([_LINE, *spec.column_names]), notes=["empty file (no header, no rows)"])
    parsed = parser(raw, entry.encoding, spec, name)
    table = parsed.table
    columns = {n: table.column(n) if n in table.column_names else pa.nulls(table.num_rows, pa.string())
               for n in spec.column_names}
    columns[_LINE] = table.column(_LINE)
    # Required fields that are empty make a row unusable as delivered: refuse it with the field named.
    parsed.table, parsed.rejected = _split_required(pa.table(columns), spec, parsed.rejected)
    return parsed


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


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in the batch folder must not block the open


def _checked_name(name: object, rel: str) -> str:
    """The manifest's ``file`` when it is a plain relative name: no absolute path, drive or ``..`` component."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise _Refused(f"{rel}: manifest field file must be a relative file name")
    windows = PureWindowsPath(name)
    if PurePosixPath(name).is_absolute() or windows.drive or windows.root:
        raise _Refused(f"{rel}: manifest field file is an absolute path; it must name a file inside the "
                            "batch folder")
    if ".." in windows.parts:  # PureWindowsPath splits on both / and \\
        raise _Refused(f"{rel}: manifest field file climbs out of the batch folder (..)")
    return name


def _read_delivered(folder: Path, entry: ManifestFile, rel: str, max_bytes: int) -> bytes:
    """The bytes of one listed file. Checked before anything is opened: the name resolves (symlinks followed)
    inside the batch folder, and is a regular file no larger than ``max_bytes``. Read once, so the checksum and
    the parser see the same bytes."""
    name = _checked_name(entry.file, rel)
    try:
        real = (folder / name).resolve()
        inside = real.is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise _Refused(f"{rel}: manifest field file cannot be resolved ({exc})") from None
    if not inside:
        raise _Refused(f"{rel}: manifest field file resolves outside the batch folder (symlink)")
    try:
        fd = os.open(real, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        raise _Refused(f"{rel}: listed in the manifest but not delivered yet; tried again on the next run",
                            field="file", status="missing") from None
    except OSError as exc:
        raise _Refused(f"{rel}: cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{rel}: not a regular file")
        if info.st_size > max_bytes:
            raise _Refused(f"{rel}: {info.st_size} bytes, above the {max_bytes}-byte limit "
                                "(MEDLAKE_MAX_FILE_BYTES); not read, tried again on the next run",
                                field="file", status="too_large")
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:  # grew after the check
        raise _Refused(f"{rel}: more than {max_bytes} bytes (MEDLAKE_MAX_FILE_BYTES); not read, tried again "
                            "on the next run", status="too_large")
    return raw


def _land_file(
    settings: Settings, spec: SourceTable, folder: Path, manifest: Manifest, entry: ManifestFile,
    already_in_ods: bool, pending: _Pending,
) -> FileLoad:
    """Check and parse one file; its rows and refused records join ``pending`` (committed by ``_flush``)."""
    rel = f"{folder.relative_to(settings.landing).as_posix()}/{entry.file}"
    load = FileLoad(manifest.institution, manifest.batch_id, spec.name, rel, entry.sha256, entry.rows,
                    manifest_sums=dict(entry.sums))
    provenance = {"institution": manifest.institution, "batch_id": manifest.batch_id, "source_file": rel,
                  "file_sha256": entry.sha256}
    try:
        raw = _read_delivered(folder, entry, rel, settings.max_file_bytes)
        actual = hashlib.sha256(raw).hexdigest()
        if actual != entry.sha256:
            raise _Refused(f"{rel}: checksum {actual[:12]}… does not match manifest {str(entry.sha256)[:12]}…",
                           field="sha256")
        parsed = parse_delivery(raw, entry, spec, rel)
    except _FileRejected as exc:
        if exc.status != "missing":
            pending.rejected.append(_with_provenance([Rejected(0, exc.field, exc.reason)], provenance))
        load.status, load.message = exc.status, exc.reason
        return load
    table, rejected = parsed.table, parsed.rejected
    if not already_in_ods and table.num_rows:
        n = table.num_rows
        loaded = table.append_column("_institution", pa.array([manifest.institution] * n, pa.string()))
        for name, value in (("_batch_id", manifest.batch_id), ("_source_file", rel), ("_file_sha256", entry.sha256)):
            loaded = loaded.append_column(name, pa.array([value] * n, pa.string()))
        pending.tables.append(loaded)
        pending.rows += n
    if rejected or parsed.dropped:
        pending.rejected.append(_with_provenance(parsed.dropped + rejected, provenance))
    load.rows_loaded = table.num_rows
    load.rows_quarantined = len(rejected)
    load.loaded_sums = _sums(table, spec.amount_columns)
    _reconcile(load, spec)
    load.message = "; ".join([*parsed.notes, *([load.message] if load.message else [])])
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
    """One row per (checksum, file): an entry refused for a checksum it only claims never overwrites the row of the
    file that has it. The last outcome of an entry listed twice wins."""
    rows = {}
    for load in loads:
        row = asdict(load)
        row["manifest_sums"] = json.dumps(load.manifest_sums, sort_keys=True)
        row["loaded_sums"] = json.dumps(load.loaded_sums, sort_keys=True)
        row["logged_at"] = datetime.now(UTC)
        rows[load.file_sha256, load.source_file] = row
    if rows:
        crash_point("ods.load_log.before_commit")
        engine.merge(engine.from_arrow(pa.Table.from_pylist(list(rows.values()))), load_log_path(settings, table),
                     keys=("file_sha256", "source_file"))
        crash_point("ods.load_log.after_commit")


def _done(engine: Engine, settings: Settings, table: str) -> set[str]:
    """Checksums of files finished for good: in the load log with a status that is not tried again."""
    path = load_log_path(settings, table)
    if not engine.exists(path):
        return set()
    finished = pl.scan_delta(path).filter(~pl.col("status").is_in(RETRIED))
    return set(finished.select(pl.col("file_sha256").unique()).collect().to_series().to_list())


def _batch_refusal(settings: Settings, folder: Path, manifest: Manifest) -> Rejected | None:
    """Why a whole batch is refused: its folder is not where its manifest says it comes from."""
    institution, day = folder.parent.name, folder.name
    if not folder.resolve().is_relative_to(settings.landing.resolve()):
        return Rejected(0, "folder", f"batch folder {institution}/{day} resolves outside the landing zone (symlink)")
    if manifest.institution != institution:
        return Rejected(0, "institution", f"batch folder {institution}/{day} belongs to institution {institution} "
                                          f"but its manifest says institution {manifest.institution!r}")
    if manifest.business_date != day:
        return Rejected(0, "business_date", f"batch folder {institution}/{day} is for {day} but its manifest says "
                                            f"business_date {manifest.business_date!r}")
    return None


def _quarantine_batch(engine: Engine, settings: Settings, spec: SourceTable, folder: Path, refusal: Rejected,
                      batch_id: str = "") -> None:
    write_quarantine(engine, settings, layer="ods", table=spec.name, rows=[refusal], institution=folder.parent.name,
                     batch_id=batch_id, source_file=f"{folder.parent.name}/{folder.name}/{MANIFEST_NAME}",
                     file_sha256=f"manifest:{folder.name}:{folder.parent.name}")


def load_source_table(engine: Engine, settings: Settings, spec: SourceTable) -> OdsLoadReport:
    """Land every not-yet-landed delivered file of one source table, in business-date order.

    A file is done once its load-log row exists with a final status; an entry logged with a status in ``RETRIED``
    is checked again on every run. A file whose rows reached ODS but whose log row did not (a crash in between) is not
    appended again: only its quarantine and log rows are completed. A batch whose folder does not match its
    manifest (institution, business date) is refused whole: quarantined on every run, never logged as done. The
    table's write lock is held throughout, so a concurrent load of the same table waits, then finds the files landed.
    """
    with table_lock(settings, f"ods/{spec.name}"):
        return _load_unlanded(engine, settings, spec)


def _load_unlanded(engine: Engine, settings: Settings, spec: SourceTable) -> OdsLoadReport:
    report = OdsLoadReport(spec.name)
    done = _done(engine, settings, spec.name)
    in_ods = _shas(engine, ods_path(settings, spec.name), "_file_sha256")
    pending = _Pending()
    for folder in pending_batches(settings):
        try:
            manifest = read_manifest(folder)
        except MedlakeError as exc:  # a broken manifest blocks only its own batch
            _quarantine_batch(engine, settings, spec, folder, Rejected(0, "manifest", str(exc)))
            continue
        entries = [e for e in manifest.files if e.table == spec.name]
        refusal = _batch_refusal(settings, folder, manifest)
        if refusal is not None:
            if entries:
                _quarantine_batch(engine, settings, spec, folder, refusal, manifest.batch_id)
                report.batches_refused.append(refusal.reason)
            continue
        for entry in entries:
            if entry.sha256 in done:
                report.files.append(FileLoad(manifest.institution, manifest.batch_id, spec.name, entry.file,
                                             entry.sha256, entry.rows, status="skipped"))
                continue
            report.files.append(_land_file(settings, spec, folder, manifest, entry,
                                           already_in_ods=entry.sha256 in in_ods, pending=pending))
            if report.files[-1].status not in RETRIED:
                done.add(entry.sha256)
            if pending.rows >= _FLUSH_ROWS:
                _flush(engine, settings, spec, pending)
    _flush(engine, settings, spec, pending)
    _write_load_log(engine, settings, spec.name, [f for f in report.files if f.status != "skipped"])
    return report
