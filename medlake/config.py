"""Where things live and which engine runs them, read from the environment once.

The lake root is ``$MEDLAKE_HOME/lake`` unless ``MEDLAKE_LAKE_URI`` puts it elsewhere: another local folder, or an
object store URI such as ``s3://bucket/medlake/lake`` (S3, MinIO, OSS, COS...). A remote lake is a
``upath.UPath`` (backed by fsspec/s3fs), so ``settings.lake / "dwd" / "patient"`` keeps working and ``str()`` of it
is the URI that delta-rs, polars and Spark are given. Object-store credentials come only from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``):
delta-rs, polars and s3fs each read them there; medlake never stores them.

This module is the only one that reads the environment. Everything else receives a :class:`Settings` (library code
as an argument, Dagster code through the resources built from it). Secrets (the mask salt, the lineage API key) are
never values of ``Settings``: it records only which of :data:`SECRET_NAMES` are set, and the resources bind them as
Dagster ``EnvVar`` values, resolved when a run starts. Environment defaults for third-party libraries that read nothing
else (Soda's telemetry, PySpark's worker Python) are written here too (:func:`export_library_default`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import unquote, urlparse

from upath import UPath

from medlake.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ENGINES",
    "LINEAGE_API_KEY",
    "MASK_SALT",
    "SECRET_NAMES",
    "LakePath",
    "LineageSettings",
    "ServeSettings",
    "Settings",
    "SparkSettings",
    "armed_crash_point",
    "child_environment",
    "export_library_default",
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

MASK_SALT = "MEDLAKE_MASK_SALT"
LINEAGE_API_KEY = "OPENLINEAGE_API_KEY"
SECRET_NAMES = (MASK_SALT, LINEAGE_API_KEY)
"""Environment variables holding secrets: bound by the resources as Dagster ``EnvVar`` values, never read into
:class:`Settings` (a workflow's ``salt_env`` names one of them)."""

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
class SparkSettings:
    """Where the Spark engine's session runs and how dbt reaches Spark (see :mod:`medlake.engine.spark_session`
    and :mod:`medlake.engine.dbt_spark_profile`). Empty strings mean "the default"."""

    master: str = "local[2]"  # MEDLAKE_SPARK_MASTER
    conf: str = ""  # MEDLAKE_SPARK_CONF: extra key=value pairs separated by commas, applied last
    ivy: str = ""  # MEDLAKE_SPARK_IVY; empty: ~/.cache/medlake/ivy
    delta_jvm_version: str = ""  # MEDLAKE_DELTA_JVM_VERSION; empty: spark_session.DELTA_JVM_VERSION
    log_level: str = "WARN"  # MEDLAKE_SPARK_LOG_LEVEL
    python: str = ""  # PYSPARK_PYTHON as set by the user; empty: this interpreter on local masters
    remote: str = ""  # MEDLAKE_SPARK_REMOTE: a Spark Connect URL for dbt's session method
    dbt_method: str = ""  # MEDLAKE_DBT_SPARK_METHOD; empty: session
    thrift_host: str = ""  # MEDLAKE_SPARK_THRIFT_HOST
    thrift_port: int | None = None  # MEDLAKE_SPARK_THRIFT_PORT; None: the method's default port
    user: str = "medlake"  # MEDLAKE_SPARK_USER
    cluster: str = ""  # MEDLAKE_SPARK_CLUSTER


@dataclass(frozen=True)
class LineageSettings:
    """Where OpenLineage events go (see :mod:`medlake.lineage.emitter`); the API key is a secret, not here."""

    disabled: bool = False  # OPENLINEAGE_DISABLED=true
    client_configured: bool = False  # OPENLINEAGE_CONFIG or OPENLINEAGE__TRANSPORT__TYPE: the client reads its own
    url: str = ""  # OPENLINEAGE_URL
    endpoint: str = "api/v1/lineage"  # OPENLINEAGE_ENDPOINT
    timeout: float = 5.0  # MEDLAKE_LINEAGE_TIMEOUT, seconds


_SECTIONS: dict[str, type[Any]] = {"spark": SparkSettings, "lineage": LineageSettings}
_PATH_FIELDS = ("home", "dagster_instance", "standards_dir", "checks_dir", "workflows_dir")


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
    # DAGSTER_HOME; None: home/dagster
    dagster_instance: Path | None = None
    # MEDLAKE_STANDARDS_DIR (the standards release folders); None: the shipped medlake/standards/data
    standards_dir: Path | None = None
    # MEDLAKE_STANDARDS_VERSION (the active standards release); empty: the newest release
    standards_version: str = ""
    # MEDLAKE_CHECKS_DIR (the generated Soda contracts); None: the repository's checks/generated
    checks_dir: Path | None = None
    # MEDLAKE_WORKFLOWS (workflow YAML compiled into assets); None: the package's scenario templates
    workflows_dir: Path | None = None
    spark: SparkSettings = field(default_factory=SparkSettings)
    lineage: LineageSettings = field(default_factory=LineageSettings)
    # which of SECRET_NAMES are set (names only: the values reach resources as Dagster EnvVars)
    secrets: tuple[str, ...] = ()
    # ``medlake serve`` (not a Dagster resource's config: it holds the service's secret values)
    serve: ServeSettings = field(default_factory=ServeSettings)

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
        """The Dagster instance folder: ``DAGSTER_HOME`` when set, else ``home/dagster``."""
        return self.dagster_instance or self.home / "dagster"

    @property
    def workflows(self) -> Path:
        """The folder of workflow YAML compiled into governed assets (every ``*.yaml`` below it); by default the
        scenario templates shipped in the package (``medlake/workflows/templates``)."""
        return self.workflows_dir or Path(__file__).resolve().parent / "workflows" / "templates"

    def to_config(self) -> dict[str, Any]:
        """Every field as plain JSON values (paths as strings, sections as mappings, unset values left out): what a
        Dagster resource's config can carry. :meth:`from_config` is the inverse."""
        data = asdict(self)
        data["secrets"] = list(self.secrets)
        del data["serve"]  # the service's own settings, with secret values: never in a Dagster resource's config
        return _without_none({k: str(v) if isinstance(v, Path) else v for k, v in data.items()})

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from :meth:`to_config`'s mapping; fields it leaves out keep their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"settings: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = dict(data)
        for name in _PATH_FIELDS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        for name, section in _SECTIONS.items():
            if name in values:
                values[name] = section(**values[name])
        if "secrets" in values:
            values["secrets"] = tuple(values["secrets"])
        return cls(**values)

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


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _env_path(name: str) -> Path | None:
    value = _env(name)
    return Path(value) if value else None


def _env_number(name: str, default: float, kind: type[int] | type[float], expected: str) -> Any:
    value = _env(name)
    try:
        return kind(value) if value else default
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: expected {expected}") from None


def _spark_from_env() -> SparkSettings:
    port = _env("MEDLAKE_SPARK_THRIFT_PORT")
    return SparkSettings(
        master=_env("MEDLAKE_SPARK_MASTER", "local[2]"), conf=_env("MEDLAKE_SPARK_CONF"), ivy=_env("MEDLAKE_SPARK_IVY"),
        delta_jvm_version=_env("MEDLAKE_DELTA_JVM_VERSION"), log_level=_env("MEDLAKE_SPARK_LOG_LEVEL", "WARN"),
        python=_env("PYSPARK_PYTHON"), remote=_env("MEDLAKE_SPARK_REMOTE"),
        dbt_method=_env("MEDLAKE_DBT_SPARK_METHOD"), thrift_host=_env("MEDLAKE_SPARK_THRIFT_HOST"),
        thrift_port=_env_number("MEDLAKE_SPARK_THRIFT_PORT", 0, int, "a port number") if port else None,
        user=_env("MEDLAKE_SPARK_USER", "medlake"), cluster=_env("MEDLAKE_SPARK_CLUSTER"),
    )


def _lineage_from_env() -> LineageSettings:
    return LineageSettings(
        disabled=_env("OPENLINEAGE_DISABLED").lower() == "true",
        client_configured=bool(_env("OPENLINEAGE_CONFIG") or _env("OPENLINEAGE__TRANSPORT__TYPE")),
        url=_env("OPENLINEAGE_URL"), endpoint=_env("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        timeout=_env_number("MEDLAKE_LINEAGE_TIMEOUT", 5.0, float, "a number of seconds"),
    )


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
    ``MEDLAKE_LAKE_URI`` (default: ``$MEDLAKE_HOME/lake``), ``MEDLAKE_MAX_FILE_BYTES`` (default 256 MiB),
    ``MEDLAKE_TIME_TRAVEL_DAYS`` (default 7), ``DAGSTER_HOME``, the standards, checks and workflow folders
    (``MEDLAKE_STANDARDS_DIR``, ``MEDLAKE_STANDARDS_VERSION``, ``MEDLAKE_CHECKS_DIR``, ``MEDLAKE_WORKFLOWS``), the
    Spark variables (:class:`SparkSettings`), the OpenLineage variables (:class:`LineageSettings`) and which
    :data:`SECRET_NAMES` are set."""
    home = Path(os.environ.get("MEDLAKE_HOME") or ".medlake").resolve()
    instance = _env_path("DAGSTER_HOME")
    return Settings(home=home, engine=os.environ.get("MEDLAKE_ENGINE", "polars").strip().lower() or "polars",
                    lake_uri=_lake_uri_from_env(), max_file_bytes=_max_file_bytes_from_env(),
                    time_travel_days=_time_travel_days_from_env(),
                    dagster_instance=instance.resolve() if instance else None,
                    standards_dir=_env_path("MEDLAKE_STANDARDS_DIR"),
                    standards_version=_env("MEDLAKE_STANDARDS_VERSION"), checks_dir=_env_path("MEDLAKE_CHECKS_DIR"),
                    workflows_dir=_env_path("MEDLAKE_WORKFLOWS"), spark=_spark_from_env(), lineage=_lineage_from_env(),
                    secrets=tuple(name for name in SECRET_NAMES if os.environ.get(name)),
                    serve=_serve_from_env())


def export_library_default(name: str, value: str) -> None:
    """Set environment variable ``name`` for a third-party library that reads only the environment (Soda's
    telemetry switch, PySpark's worker Python), unless the user set it already."""
    os.environ.setdefault(name, value)


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides`` (e.g. ``MEDLAKE_HOME``, ``MEDLAKE_ENGINE``, a salt): the
    environment of a child process (a benchmark's or a test's ``medlake run``) that reads its own settings."""
    return {**os.environ, **overrides}


# Soda Core reads its telemetry switch from the environment when it is imported; medlake sends no telemetry.
export_library_default("SODA_CORE_TELEMETRY_ENABLED", "false")


def armed_crash_point() -> str:
    """``MEDLAKE_CRASH_POINT``: the write-path point at which a crash-consistency test has this process killed
    (``medlake.lake.crashpoints``); empty (never) unless a test sets it."""
    return os.environ.get("MEDLAKE_CRASH_POINT", "").strip()
