"""Per-table write locks: one read-decide-write section of a lake table at a time on this host.

ODS skips files already in its load log, DWD reads rows past its watermark, the EMPI links records not yet in its
index, a workflow reads its source and writes its target: each reads the table's state, decides, then commits. Two
runs doing that at once on the same table both decide on the same old state (every file loaded twice). A section
holds ``table_lock(settings, "ods/diagnosis")`` for its whole duration, so a second run waits, then sees the first
run's commits. The lock is an OS file lock under ``$MEDLAKE_HOME/work/locks/``: it serializes processes on ONE host.
A lake on object storage written from several hosts needs one writer per table (see docs/scale-out.md).

Writers that hold no lock (the EMPI's manual decisions, a dbt model landing) rely on Delta's optimistic commits: a
``CommitFailedError`` is retried on the new table version by the engine (``medlake.engine.polars_engine``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from medlake.config import Settings
from medlake.errors import LakeBusyError

__all__ = ["LOCK_WAIT_SECONDS", "table_lock"]

LOCK_WAIT_SECONDS = 6 * 3600.0  # a full load of a large delivery can hold a table for hours


@contextmanager
def table_lock(settings: Settings, table: str, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the write lock of ``table`` (lake-relative, e.g. ``"dwd/patient"``) for the ``with`` block.

    Re-entrant within a thread (a section may call another that takes the same lock); raises ``LakeBusyError``
    after ``wait`` seconds."""
    settings.locks.mkdir(parents=True, exist_ok=True)
    path = settings.locks / (table.strip("/").replace("/", ".") + ".lock")
    lock = FileLock(path, is_singleton=True)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise LakeBusyError(f"{table}: another run has held the write lock {path} for over {wait:.0f} s") from None
    try:
        yield
    finally:
        lock.release()
