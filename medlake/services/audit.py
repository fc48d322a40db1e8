"""The audit of every service request: an append-only Delta table, written in batches.

A request's record is first appended (and fsync'ed) to a local write-ahead file; only then is the response sent,
so no request is answered whose record could not be written (a failing write turns the response into 503). A
background thread appends the pending records to the Delta table in one commit per batch (one commit per request
costs ~40-70 ms) and stores the last record's sequence number in that commit's metadata; on start, records of the
write-ahead file past that number (a crash between the two) are committed first, so every record lands exactly once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import narwhals as nw
import pyarrow as pa
from filelock import FileLock, Timeout

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.errors import ConfigurationError, MedlakeError
from medlake.services.problems import AuditUnavailableError

__all__ = ["AUDIT_SCHEMA", "SEQ_KEY", "AuditLog", "AuditRecord", "audit_path", "read_audit"]

SEQ_KEY = "medlake.audit_seq"
_MAX_BACKLOG_BATCHES = 20  # pending records beyond this many batches: the Delta table is unreachable, stop serving

AUDIT_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("request_id", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("user", pa.string()), ("role", pa.string()), ("issuer", pa.string()), ("client", pa.string()),
    ("method", pa.string()), ("path", pa.string()), ("service", pa.string()), ("parameters", pa.string()),
    ("status", pa.int32()), ("outcome", pa.string()), ("rows", pa.int64()),
    ("columns_unmasked", pa.list_(pa.string())), ("grant_id", pa.string()), ("latency_ms", pa.float64()),
])


@dataclass
class AuditRecord:
    """One request: who, in which role, which service with which parameters, and what came of it."""

    request_id: str
    time: datetime
    method: str
    path: str
    user: str = ""
    role: str = ""
    issuer: str = ""
    client: str = ""
    service: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    status: int = 0
    outcome: str = ""
    rows: int = 0
    columns_unmasked: Sequence[str] = ()
    grant_id: str = ""
    latency_ms: float = 0.0
    seq: int = 0

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["parameters"] = json.dumps(self.parameters, ensure_ascii=False, sort_keys=True, default=str)
        row["columns_unmasked"] = list(self.columns_unmasked)
        row["time"] = self.time.isoformat()
        return row


def audit_path(settings: Settings) -> str:
    return str(settings.lake / "audit" / "service_requests")


def _to_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    converted = [{**row, "time": datetime.fromisoformat(row["time"])} for row in rows]
    return pa.Table.from_pylist(converted, schema=AUDIT_SCHEMA)


class AuditLog:
    """Write-ahead, then batched Delta appends. One server process per ``$MEDLAKE_HOME`` holds the write-ahead file."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.path = audit_path(settings)
        self.wal = settings.home / "services" / "audit.wal"
        self.wal.parent.mkdir(parents=True, exist_ok=True)
        self.flush_seconds = settings.serve.audit_flush_seconds
        self.batch_rows = settings.serve.audit_batch_rows
        self._owner = FileLock(str(self.wal) + ".lock")
        self._lock = threading.Lock()  # guards _pending, _seq and the write-ahead file
        self._flushing = threading.Lock()  # one Delta commit at a time: a batch is never committed twice
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: list[dict[str, Any]] = []
        self._seq = 0
        self._last_error = ""
        self._thread: threading.Thread | None = None
        self._starts = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the write-ahead file, commit what a previous process left in it, start the flusher. An app whose
        lifespan runs again (several test clients on one app) shares the running log; the last close stops it."""
        self._starts += 1
        if self._starts > 1:
            return
        try:
            self._owner.acquire(timeout=0)
        except Timeout:
            self._starts -= 1
            raise ConfigurationError(f"{self.wal} is held by another medlake serve process on this home") from None
        committed = self._committed_seq()
        self._pending = [row for row in self._read_wal() if row["seq"] > committed]
        self._seq = max([committed, *(row["seq"] for row in self._pending)])
        self.flush()
        self._thread = threading.Thread(target=self._run, name="medlake-audit-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._starts -= 1
        if self._starts > 0:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
        self._owner.release()

    # -- writing -----------------------------------------------------------------------------------------------

    def record(self, entry: AuditRecord) -> None:
        """Make ``entry`` durable (write-ahead file, fsync) or raise :class:`AuditUnavailableError`."""
        with self._lock:
            if len(self._pending) >= self.batch_rows * _MAX_BACKLOG_BATCHES:
                raise AuditUnavailableError(f"{len(self._pending)} records not yet committed to {self.path}: "
                                            f"{self._last_error or 'the table is not keeping up'}")
            entry.seq = self._seq + 1
            row = entry.as_row()
            try:
                with self.wal.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise AuditUnavailableError(f"{self.wal}: {exc.strerror or exc}") from exc
            self._seq = entry.seq
            self._pending.append(row)
            full = len(self._pending) >= self.batch_rows
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Commit every pending record to the Delta table (one commit); the number committed."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            batch = list(self._pending)
        if not batch:
            return 0
        try:
            self.engine.append(self.engine.from_arrow(_to_arrow(batch)), self.path,
                               metadata={SEQ_KEY: str(batch[-1]["seq"])})
        except (MedlakeError, OSError) as exc:
            self._last_error = str(exc)
            return 0
        self._last_error = ""
        with self._lock:
            self._pending = self._pending[len(batch):]
            self._rewrite_wal()
        return len(batch)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- internals ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def _committed_seq(self) -> int:
        if not self.engine.exists(self.path):
            return 0
        return int(self.engine.commit_metadata(self.path).get(SEQ_KEY, "0"))

    def _read_wal(self) -> list[dict[str, Any]]:
        if not self.wal.exists():
            return []
        rows = []
        for line in self.wal.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash was never acknowledged: its request failed
                continue
        return rows

    def _rewrite_wal(self) -> None:
        """Keep only uncommitted records in the write-ahead file (called with ``_lock`` held)."""
        temporary = Path(str(self.wal) + ".tmp")
        temporary.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._pending),
                             encoding="utf-8")
        os.replace(temporary, self.wal)


def read_audit(engine: Engine, settings: Settings, *, user: str = "", service: str = "", outcome: str = "",
               since: datetime | None = None, limit: int = 100) -> pa.Table:
    """Committed audit records, newest first, filtered by user, service, outcome and time."""
    path = audit_path(settings)
    if not engine.exists(path):
        return AUDIT_SCHEMA.empty_table()
    frame = engine.read(path)
    if user:
        frame = frame.filter(nw.col("user") == user)
    if service:
        frame = frame.filter(nw.col("service") == service)
    if outcome:
        frame = frame.filter(nw.col("outcome") == outcome)
    if since is not None:
        frame = frame.filter(nw.col("time") >= since.astimezone(UTC))
    return engine.to_arrow(frame.sort("seq", descending=True).head(limit))

