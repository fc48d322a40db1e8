"""One exception hierarchy for the whole platform."""

from __future__ import annotations

__all__ = [
    "CommitConflictError",
    "ConfigurationError",
    "IdentifierError",
    "IngestError",
    "LakeBusyError",
    "LakeWriteError",
    "MedlakeError",
    "MissingBackendError",
    "TableNotFoundError",
]


class MedlakeError(Exception):
    """Base class of every error medlake raises on purpose."""


class CommitConflictError(MedlakeError):
    """A Delta commit kept conflicting with concurrent writers to the same table after every retry."""


class ConfigurationError(MedlakeError):
    """A setting, YAML file or mapping is malformed; the message names file, line and what was expected."""


class IngestError(MedlakeError):
    """A landing file or row cannot be read; carries file, line and field."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "") -> None:
        where = ":".join(p for p in (file, str(line) if line is not None else "", field) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.file = file
        self.line = line
        self.field = field


class IdentifierError(MedlakeError):
    """An identifier (e.g. a GB 11643 ID number) is malformed."""


class LakeBusyError(MedlakeError):
    """A lake table's write lock was not released in time (another load of the same table is still running)."""


class TableNotFoundError(MedlakeError):
    """A Delta table that should exist does not."""


class LakeWriteError(MedlakeError):
    """Writing a lake table failed in the filesystem (disk full, read-only mount, permission): nothing was committed,
    so the table is still at its last committed version. Names the table and the cause."""

    def __init__(self, table: str, cause: str) -> None:
        super().__init__(f"cannot write table {table}: {cause}; the table is left at its last committed version")
        self.table = table
        self.cause = cause


class MissingBackendError(MedlakeError, ImportError):
    """An optional backend (e.g. Spark) is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install medlake's '{extra}' extra "
            f"(pip install 'medlake[{extra}]') or use the default engine"
        )
