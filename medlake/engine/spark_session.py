"""One SparkSession per process, configured for Delta Lake and for medlake's data.

Where the session runs is configuration, never code:

- ``MEDLAKE_SPARK_MASTER``: ``local[2]`` (default), ``spark://host:7077``, ``k8s://https://api:6443`` ...
- ``MEDLAKE_SPARK_CONF``: extra ``key=value`` pairs separated by commas, applied last (so they win), e.g.
  ``spark.hadoop.fs.s3a.endpoint=http://minio:9000,spark.driver.memory=4g``.
- ``MEDLAKE_SPARK_IVY``: Ivy home for the delta-spark Maven download (default ``~/.cache/medlake/ivy``).
- ``MEDLAKE_DELTA_JVM_VERSION``: version of the ``io.delta:delta-spark_<spark>_<scala>`` jar (default
  :data:`DELTA_JVM_VERSION`). pip ``delta-spark`` 4.4.1 has no 4.4.1 jar on Maven Central (the newest for
  Spark 4.2 is 4.4.0), so requirements pin pip ``delta-spark==4.4.0`` to match the jar; the jar version is still
  pinned here on its own, so a pip patch release without a jar can never break the Maven resolution again.

Deliberate choices:

- ``spark.sql.timestampType=TIMESTAMP_NTZ``: hospital times are wall-clock times without a zone, which is what
  polars ``Datetime("us")`` and delta-rs (``timestamp_ntz``) store; so ``to_timestamp`` and arrow imports give
  ``TIMESTAMP_NTZ`` and a table round-trips between the engines without a zone shift. The session time zone is
  UTC so that any ``TIMESTAMP`` (with local time zone) that does appear is never shifted by the host's zone.
- ``spark.sql.ansi.enabled=true`` (Spark 4's default, kept on purpose): a failing cast or an overflow raises, as a
  strict polars cast does, instead of silently becoming NULL; tolerant parsing must say so (``try_cast``).
- Local masters get a driver JVM tuned for short runs (C1-only JIT, serial GC): measured about half the
  warm-up of the first Delta write and MERGE on a 2-core machine. Clusters keep the JVM defaults.
- The Maven resolution of delta-spark happens once: the jar paths Ivy resolved are pinned in
  ``<ivy>/medlake-jars.json`` and later starts pass them as ``spark.jars`` without contacting Maven or running Ivy.

Pointing the same project at a cluster (nothing in ``assets/`` changes):

- Standalone: ``MEDLAKE_ENGINE=spark MEDLAKE_SPARK_MASTER=spark://host:7077``; the driver ships the pinned jars
  to the executors. Size it with ``MEDLAKE_SPARK_CONF=spark.executor.memory=8g,spark.executor.cores=4``.
- Kubernetes: ``MEDLAKE_SPARK_MASTER=k8s://https://<api-server>:6443`` and in ``MEDLAKE_SPARK_CONF``
  ``spark.kubernetes.container.image=<image with the same pyspark/delta-spark>``,
  ``spark.kubernetes.namespace=...``, ``spark.kubernetes.authenticate.driver.serviceAccountName=...``.
- The lake on object storage: ``MEDLAKE_HOME`` stays local (landing, work); point the lake tables at
  ``s3a://bucket/lake/...`` and add ``spark.jars.packages=org.apache.hadoop:hadoop-aws:<pyspark's hadoop>``,
  ``spark.hadoop.fs.s3a.endpoint=...``, ``spark.hadoop.fs.s3a.path.style.access=true`` (MinIO) and credentials
  through the standard AWS environment variables, never through this conf. Several writers on S3 need Delta's
  ``S3DynamoDBLogStore`` (Spark) and the matching locking provider / conditional puts for delta-rs, or else only
  one engine may write a given table at a time. Both engines must use the same table URIs.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from medlake.config import Settings, SparkSettings, export_library_default
from medlake.config import settings as current_settings
from medlake.errors import ConfigurationError, MedlakeError, MissingBackendError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "DELTA_JVM_VERSION",
    "SparkStartError",
    "delta_maven_coordinates",
    "get_spark",
    "ivy_home",
    "launch_conf",
    "session_conf",
    "spark_master",
    "stop_spark",
]

DELTA_JVM_VERSION = "4.4.0"

_LOCK = threading.Lock()
_SESSION: SparkSession | None = None
_PIN_FILE = "medlake-jars.json"


class SparkStartError(MedlakeError):
    """The Spark driver did not start (no Java, unresolvable delta-spark jar, unreachable master)."""


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise MissingBackendError("pyspark", "spark") from None
    return pyspark


def _spark(spark: SparkSettings | None) -> SparkSettings:
    return spark if spark is not None else current_settings().spark


def spark_master(spark: SparkSettings | None = None) -> str:
    """``MEDLAKE_SPARK_MASTER`` or ``local[2]``."""
    return _spark(spark).master.strip() or "local[2]"


def ivy_home(spark: SparkSettings | None = None) -> Path:
    """A stable Ivy home so a second start finds the delta-spark jars already downloaded."""
    configured = _spark(spark).ivy.strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "medlake" / "ivy"


def delta_maven_coordinates(spark: SparkSettings | None = None) -> list[str]:
    """``configure_spark_with_delta_pip``'s Maven coordinates (artifact for this pyspark), jar version pinned."""
    pyspark = _pyspark()
    try:
        from delta.pip_utils import configure_spark_with_delta_pip
    except ImportError:
        raise MissingBackendError("delta-spark", "spark") from None
    builder = configure_spark_with_delta_pip(pyspark.sql.SparkSession.builder)
    packages = builder._options.get("spark.jars.packages", "")
    builder._options.pop("spark.jars.packages", None)  # the builder is a shared singleton; leave it clean
    jar_version = _spark(spark).delta_jvm_version.strip() or DELTA_JVM_VERSION
    delta_spark, *extra = [p for p in packages.split(",") if p]
    group, artifact, _pip_version = delta_spark.split(":")
    return [f"{group}:{artifact}:{jar_version}", *extra]


def _extra_conf(spark: SparkSettings) -> dict[str, str]:
    raw = spark.conf.strip()
    conf: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"MEDLAKE_SPARK_CONF item {item!r}: expected key=value")
        conf[key.strip()] = value.strip()
    return conf


def _pinned_jars(ivy: Path, coordinates: list[str]) -> list[str] | None:
    pin = ivy / _PIN_FILE
    if not pin.is_file():
        return None
    try:
        pinned = json.loads(pin.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    jars = pinned.get("jars", []) if pinned.get("packages") == coordinates else []
    return jars if jars and all(Path(j).is_file() for j in jars) else None


_VERSIONED_JAR = re.compile(r"^(?P<artifact>.+?)-\d[^-]*(?:-\d+)?\.jar$")


def _artifact(jar: str, *, ivy_named: bool = False) -> str:
    """``delta-storage-4.4.0.jar`` (Spark) or, Ivy-named, ``io.delta_delta-storage-4.4.0.jar`` → ``delta-storage``."""
    name = Path(jar).name.partition("_")[2] if ivy_named else Path(jar).name
    found = _VERSIONED_JAR.match(name)
    return found["artifact"] if found else name


def _bundled_artifacts() -> set[str]:
    """Artifacts pyspark already ships (hadoop, parquet, jackson, log4j ...): never add a second version."""
    jars_dir = Path(_pyspark().__file__).parent / "jars"
    return {_artifact(j.name) for j in jars_dir.glob("*.jar")}


def _pin_jars(ivy: Path, coordinates: list[str], resolved: str) -> None:
    bundled = _bundled_artifacts()
    jars = [urlparse(j).path or j for j in resolved.split(",") if j]
    jars = [
        j for j in jars
        if Path(j).is_file() and Path(j).is_relative_to(ivy) and _artifact(j, ivy_named=True) not in bundled
    ]
    if jars:
        ivy.mkdir(parents=True, exist_ok=True)
        payload = {"packages": coordinates, "jars": sorted(jars)}
        (ivy / _PIN_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")


def session_conf(cfg: Settings) -> dict[str, str]:
    """Every conf key medlake sets (before delta jars), for inspection and for tests."""
    master = spark_master(cfg.spark)
    local = master.startswith("local")
    conf = {
        "spark.master": master,
        "spark.app.name": "medlake",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars.ivy": str(ivy_home(cfg.spark)),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.warehouse.dir": str(cfg.work / "spark-warehouse"),
        # small local runs: a handful of tasks, not Spark's 200 shuffle / Delta's 50 log-replay partitions
        "spark.sql.shuffle.partitions": "2" if local else "",
        "spark.default.parallelism": "2" if local else "",
        "spark.databricks.delta.snapshotPartitions": "2" if local else "",
        "spark.ui.enabled": "false" if local else "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "2g" if local else "",
        # local runs are short: C1-only JIT and the serial GC halve the warm-up of the first Delta write/MERGE
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" if local else "",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # an empty increment still commits (as delta-rs does), so its watermark metadata is not lost
        "spark.databricks.delta.skipRecordingEmptyCommits": "false",
    }
    conf.update(_extra_conf(cfg.spark))
    return {k: v for k, v in conf.items() if v}


def launch_conf(cfg: Settings) -> dict[str, str]:
    """:func:`session_conf` plus where the delta-spark jars come from: the pinned paths, else Maven."""
    conf = session_conf(cfg)
    coordinates = delta_maven_coordinates(cfg.spark)
    pinned = _pinned_jars(Path(conf["spark.jars.ivy"]), coordinates)
    if pinned:
        conf["spark.jars"] = ",".join([*pinned, conf.get("spark.jars", "")]).strip(",")
    else:
        conf["spark.jars.packages"] = ",".join([*coordinates, conf.get("spark.jars.packages", "")]).strip(",")
    return conf


def get_spark(cfg: Settings | None = None, extra_conf: Mapping[str, str] | None = None) -> SparkSession:
    """The process-wide SparkSession with Delta Lake; created on first use, reused afterwards.

    The first start on a fresh machine downloads delta-spark and its dependencies from Maven Central into
    :func:`ivy_home`; later starts use the pinned jar paths. ``extra_conf`` (a resource's ``spark_config``) is
    applied last, like ``MEDLAKE_SPARK_CONF``, when this call starts the session.
    """
    global _SESSION
    pyspark = _pyspark()
    with _LOCK:
        if _SESSION is not None and not _SESSION.sparkContext._jsc.sc().isStopped():
            return _SESSION
        cfg = cfg or current_settings()
        ivy, coordinates = ivy_home(cfg.spark), delta_maven_coordinates(cfg.spark)
        resolve = _pinned_jars(ivy, coordinates) is None
        conf = {**launch_conf(cfg), **{str(k): str(v) for k, v in (extra_conf or {}).items()}}
        if conf["spark.master"].startswith("local"):
            # Python UDF workers (the EMPI's similarity functions) must run this interpreter, with medlake's
            # packages, not whatever python3 is first on PATH; cluster executors bring their own image instead
            export_library_default("PYSPARK_PYTHON", cfg.spark.python or sys.executable)
        builder = pyspark.sql.SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j/pyspark raise several unrelated types for one failure: no driver
            raise SparkStartError(
                f"Spark did not start (master {conf['spark.master']}, "
                f"jars {conf.get('spark.jars.packages') or 'pinned'}, ivy {conf['spark.jars.ivy']}): {exc}; "
                "check `java -version`, Maven Central access or MEDLAKE_SPARK_CONF"
            ) from exc
        session.sparkContext.setLogLevel(cfg.spark.log_level or "WARN")
        if resolve:
            _pin_jars(ivy, coordinates, session.sparkContext.getConf().get("spark.jars", ""))
        _SESSION = session
        return session


def stop_spark() -> None:
    """Stop the session (and its JVM-side context); the next :func:`get_spark` starts a new one."""
    global _SESSION
    with _LOCK:
        if _SESSION is not None:
            _SESSION.stop()
            _SESSION = None
