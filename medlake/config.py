"""Where things live and which engine runs them, read from the environment once.

The lake root is ``$MEDLAKE_HOME/lake`` unless ``MEDLAKE_LAKE_URI`` puts it elsewhere: another local folder, or an
object store URI such as ``s3://bucket/medlake/lake`` (S3, MinIO, OSS, COS...). A remote lake is a
``upath.UPath`` (backed by fsspec/s3fs), so ``settings.lake / "dwd" / "patient"`` keeps working and ``str()`` of it
is the URI that delta-rs, polars and Spark are given. Object-store credentials come only from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``):
delta-rs, polars and s3fs each read them there; medlake never stores them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias
from urllib.parse import unquote, urlparse

from upath import UPath

from medlake.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ENGINES",
    "LakePath",
    "ServeSettings",
    "Settings",
    "armed_crash_point",
    "is_remote",
    "lake_path",
    "settings",
    "subfolders",
]

ENGINES = ("polars", "spark")
DEFAULT_MAX_FILE_BYTES = 256 << 20
"""Largest delivered file ODS reads (``MEDLAKE_MAX_FILE_BYTES``, 256 MiB by default). A file is parsed in memory:
an ODS load's resident memory peaked about 7 times the file's size above a fixed ~250 MiB (24 MiB CSV: +403 MiB,
60 MiB CSV: +656 MiB over the imported modules), so a larger file is refused before it is read, with its size and
the limit in the reason, and tried again on the next run (e.g. after the limit was raised)."""

LakePath: TypeAlias = Path | UPath
"""A location in the lake: a ``Path`` on a local/shared filesystem, a ``UPath`` in an object store. Both support
``/``, ``.name``, ``.parent``, ``.exists()``, ``.is_dir()``, ``.iterdir()``, ``.glob()`` and ``str()``."""


def lake_path(location: str | os.PathLike[str] | UPath) -> LakePath:
    """``location`` (a path, a ``file://`` URI or an object-store URI) as a path object of the right kind.

    Remote paths skip fsspec's listing cache: Delta tables are written by delta-rs or Spark behind fsspec's back,
    so a cached listing would hide tables created since."""
    if isinstance(location, UPath) and not isinstance(location, Path):
        return location
    text = os.fspath(location) if not isinstance(location, str) else location
    if "://" not in text:
        return Path(text)
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    try:
        return UPath(text, use_listings_cache=False)
    except (ValueError, ImportError) as exc:  # an unknown scheme, or its fsspec backend is not installed
        raise ConfigurationError(f"lake location {text!r}: {exc}") from None


def is_remote(path: LakePath | str) -> bool:
    """True for an object-store location (anything but a local/shared filesystem path)."""
    if isinstance(path, str):
        return "://" in path and not path.startswith("file://")
    return not isinstance(path, Path)


def subfolders(folder: LakePath) -> list[LakePath]:
    """The folders directly below ``folder``, sorted by name; [] when ``folder`` does not exist.

    On an object store a folder is a key prefix: one delimited LIST, no per-entry request."""
    if is_remote(folder):
        assert isinstance(folder, UPath)
        try:
            entries = folder.fs.ls(folder.path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = {str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory"}
        return [folder / name for name in sorted(names) if name]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir())


@dataclass(frozen=True)
class ServeSettings:
    """``medlake serve``: where it listens, whom it trusts, how hard it can be pushed (``MEDLAKE_SERVE_*``,
    ``MEDLAKE_JWKS_URL``, ``MEDLAKE_JWT_*``, ``MEDLAKE_TOKEN_SECRET``, ``MEDLAKE_MASK_SALT``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    # RS256 bearer tokens of an identity provider: verified against this JWKS (empty: only built-in tokens)
    jwks_url: str = ""
    jwt_issuer: str = ""  # expected ``iss`` of identity-provider tokens (empty: not checked)
    jwt_audience: str = "medlake"  # expected ``aud`` of every token
    jwt_role_claim: str = "roles"  # claim carrying the caller's role(s) in identity-provider tokens
    # HS256 key of the built-in issuer; empty: a random key kept in $MEDLAKE_HOME/services/token_secret
    token_secret: str = field(default="", repr=False)
    token_minutes: int = 60
    rate_per_minute: int = 600  # requests per user per minute; more get 429
    max_body_bytes: int = 64 << 10
    services_file: str = ""  # configured query services YAML (empty: the packaged medlake/services/services.yaml)
    policy_file: str = ""  # casbin role -> service policy CSV (empty: the packaged medlake/services/policy.csv)
    mask_salt: str = field(default="", repr=False)  # salt of masked hashes in responses (MEDLAKE_MASK_SALT)
    audit_flush_seconds: float = 1.0
    audit_batch_rows: int = 500

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"MEDLAKE_SERVE_PORT={self.port}: expected a TCP port 1..65535")
        if self.rate_per_minute <= 0 or self.max_body_bytes <= 0 or self.token_minutes <= 0:
            raise ConfigurationError("MEDLAKE_SERVE_RATE, MEDLAKE_SERVE_MAX_BODY and MEDLAKE_TOKEN_MINUTES must be > 0")
        if self.token_secret and len(self.token_secret) < 32:
            raise ConfigurationError("MEDLAKE_TOKEN_SECRET: at least 32 characters (an HS256 key)")


@dataclass(frozen=True)
class Settings:
    """Root folder, engine and (optionally) where the lake lives. Every local path medlake writes is below
    ``home``; the lake is too unless ``lake_uri`` (``MEDLAKE_LAKE_URI``) names another folder or an object store."""

    home: Path
    engine: str = "polars"
    lake_uri: str | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # How far back every table can be read as of an earlier version (``MEDLAKE_TIME_TRAVEL_DAYS``): VACUUM never
    # deletes a data file, nor log cleanup a commit, that a version committed inside this window needs.
    time_travel_days: float = 7.0
    serve: ServeSettings = field(default_factory=ServeSettings)  # ``medlake serve``

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigurationError(f"MEDLAKE_ENGINE={self.engine!r}: expected one of {', '.join(ENGINES)}")
        if self.max_file_bytes <= 0:
            raise ConfigurationError(f"MEDLAKE_MAX_FILE_BYTES={self.max_file_bytes}: expected a positive byte count")
        if self.lake_uri:
            lake_path(self.lake_uri)  # an unknown scheme fails here, not at the first write
        if not self.time_travel_days >= 0:
            raise ConfigurationError(f"MEDLAKE_TIME_TRAVEL_DAYS={self.time_travel_days!r}: expected days >= 0")

    @property
    def lake(self) -> LakePath:
        """The lake root: ``home/lake``, or ``lake_uri`` as a Path (local) or UPath (object store)."""
        return lake_path(self.lake_uri.rstrip("/")) if self.lake_uri else self.home / "lake"

    @property
    def lake_is_remote(self) -> bool:
        return bool(self.lake_uri) and is_remote(self.lake_uri or "")

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def work(self) -> Path:
        """Scratch space (dbt's external files, Spark's ivy cache, lineage events)."""
        return self.home / "work"

    @property
    def locks(self) -> Path:
        """Lock files of the per-table write locks (``medlake.lake.locks``): local to this host."""
        return self.work / "locks"

    def table_path(self, layer: str, name: str) -> LakePath:
        return self.lake / layer / name

    @property
    def time_travel_hours(self) -> int:
        """The time-travel window in whole hours, rounded up (VACUUM retention is given in hours)."""
        return math.ceil(self.time_travel_days * 24)


def _lake_uri_from_env() -> str | None:
    value = os.environ.get("MEDLAKE_LAKE_URI", "").strip()
    if not value:
        return None
    if "://" not in value:  # a plain local path: made absolute now, like MEDLAKE_HOME
        return str(Path(value).resolve())
    return value


def _max_file_bytes_from_env() -> int:
    value = os.environ.get("MEDLAKE_MAX_FILE_BYTES", "").strip()
    if not value:
        return DEFAULT_MAX_FILE_BYTES
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"MEDLAKE_MAX_FILE_BYTES={value!r}: expected a whole number of bytes") from None


def _time_travel_days_from_env() -> float:
    value = os.environ.get("MEDLAKE_TIME_TRAVEL_DAYS", "").strip()
    try:
        return float(value) if value else 7.0
    except ValueError:
        raise ConfigurationError(f"MEDLAKE_TIME_TRAVEL_DAYS={value!r}: expected a number of days") from None


def _int_from_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: expected a whole number") from None


def _serve_from_env() -> ServeSettings:
    env = os.environ
    return ServeSettings(
        host=env.get("MEDLAKE_SERVE_HOST", "").strip() or "127.0.0.1",
        port=_int_from_env("MEDLAKE_SERVE_PORT", 8000),
        jwks_url=env.get("MEDLAKE_JWKS_URL", "").strip(),
        jwt_issuer=env.get("MEDLAKE_JWT_ISSUER", "").strip(),
        jwt_audience=env.get("MEDLAKE_JWT_AUDIENCE", "").strip() or "medlake",
        jwt_role_claim=env.get("MEDLAKE_JWT_ROLE_CLAIM", "").strip() or "roles",
        token_secret=env.get("MEDLAKE_TOKEN_SECRET", ""),
        token_minutes=_int_from_env("MEDLAKE_TOKEN_MINUTES", 60),
        rate_per_minute=_int_from_env("MEDLAKE_SERVE_RATE", 600),
        max_body_bytes=_int_from_env("MEDLAKE_SERVE_MAX_BODY", 64 << 10),
        services_file=env.get("MEDLAKE_SERVICES_FILE", "").strip(),
        policy_file=env.get("MEDLAKE_SERVE_POLICY", "").strip(),
        mask_salt=env.get("MEDLAKE_MASK_SALT", ""),
    )


def settings() -> Settings:
    """Settings from ``MEDLAKE_HOME`` (default ``./.medlake``), ``MEDLAKE_ENGINE`` (default ``polars``),
    ``MEDLAKE_LAKE_URI`` (default: ``$MEDLAKE_HOME/lake``), ``MEDLAKE_MAX_FILE_BYTES`` (default 256 MiB) and
    ``MEDLAKE_TIME_TRAVEL_DAYS`` (default 7)."""
    home = Path(os.environ.get("MEDLAKE_HOME") or ".medlake").resolve()
    return Settings(home=home, engine=os.environ.get("MEDLAKE_ENGINE", "polars").strip().lower() or "polars",
                    lake_uri=_lake_uri_from_env(), max_file_bytes=_max_file_bytes_from_env(),
                    time_travel_days=_time_travel_days_from_env(), serve=_serve_from_env())


def armed_crash_point() -> str:
    """``MEDLAKE_CRASH_POINT``: the write-path point at which a crash-consistency test has this process killed
    (``medlake.lake.crashpoints``); empty (never) unless a test sets it."""
    return os.environ.get("MEDLAKE_CRASH_POINT", "").strip()
