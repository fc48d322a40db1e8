"""The dbt-spark output for ``MEDLAKE_ENGINE=spark``, built from the same settings as :func:`get_spark`.

``MEDLAKE_DBT_SPARK_METHOD`` picks how dbt reaches Spark:

- ``session`` (default): dbt-spark starts an in-process session in the dbt process with exactly medlake's
  launch conf (Delta extension, pinned jars, NTZ timestamps, ANSI) plus a Hive metastore in ``work/`` so theme
  tables persist between dbt runs. With ``MEDLAKE_SPARK_REMOTE=sc://host:15002`` the same session method
  talks Spark Connect instead (pyspark turns ``spark.remote`` into a Connect session).
- ``thrift``: a Spark Thrift Server (``MEDLAKE_SPARK_THRIFT_HOST``, ``..._PORT`` default 10000,
  ``MEDLAKE_SPARK_USER``); Delta and object-store settings then live on the server.
- ``http``: a Databricks-style HTTP endpoint (``MEDLAKE_SPARK_THRIFT_HOST``, ``MEDLAKE_SPARK_CLUSTER``); the token
  is referenced as ``env_var('MEDLAKE_SPARK_TOKEN')`` and never written out.
"""

from __future__ import annotations

from typing import Any

from medlake.config import Settings
from medlake.config import settings as current_settings
from medlake.errors import ConfigurationError

__all__ = ["DBT_SPARK_METHODS", "dbt_spark_output", "dbt_spark_profile"]

DBT_SPARK_METHODS = ("session", "thrift", "http")
_SCHEMA = "theme"


def _session(cfg: Settings) -> dict[str, Any]:
    from medlake.engine.spark_session import launch_conf

    remote = cfg.spark.remote.strip()
    if remote:
        params = {"spark.remote": remote}
    else:
        params = launch_conf(cfg)
        derby = cfg.work / "spark-metastore"
        params["spark.driver.extraJavaOptions"] = " ".join(
            filter(None, [params.get("spark.driver.extraJavaOptions", ""), f"-Dderby.system.home={derby}"])
        )
    return {"method": "session", "host": "NA", "threads": 1, "server_side_parameters": params}


def _thrift(cfg: Settings) -> dict[str, Any]:
    return {
        "method": "thrift",
        "host": _required("MEDLAKE_SPARK_THRIFT_HOST", cfg.spark.thrift_host),
        "port": cfg.spark.thrift_port or 10000,
        "user": cfg.spark.user,
        "threads": 4,
        "connect_retries": 3,
        "connect_timeout": 10,
    }


def _http(cfg: Settings) -> dict[str, Any]:
    return {
        "method": "http",
        "host": _required("MEDLAKE_SPARK_THRIFT_HOST", cfg.spark.thrift_host),
        "port": cfg.spark.thrift_port or 443,
        "cluster": _required("MEDLAKE_SPARK_CLUSTER", cfg.spark.cluster),
        "token": "{{ env_var('MEDLAKE_SPARK_TOKEN') }}",
        "threads": 4,
        "connect_retries": 3,
        "connect_timeout": 10,
    }


def _required(name: str, value: str) -> str:
    """``value`` (the setting of environment variable ``name``), which the chosen method cannot do without."""
    value = value.strip()
    if not value:
        raise ConfigurationError(f"{name} is not set; MEDLAKE_DBT_SPARK_METHOD needs it to reach the cluster")
    return value


_BUILDERS = {"session": _session, "thrift": _thrift, "http": _http}


def dbt_spark_output(cfg: Settings | None = None, method: str | None = None) -> dict[str, Any]:
    """One dbt ``outputs`` entry of ``type: spark`` for the chosen method."""
    cfg = cfg or current_settings()
    chosen = (method or cfg.spark.dbt_method or "session").strip().lower()
    try:
        build = _BUILDERS[chosen]
    except KeyError:
        raise ConfigurationError(
            f"MEDLAKE_DBT_SPARK_METHOD={chosen!r}: expected one of {', '.join(DBT_SPARK_METHODS)}"
        ) from None
    return {"type": "spark", "schema": _SCHEMA, **build(cfg)}


def dbt_spark_profile(
    cfg: Settings | None = None, method: str | None = None, profile: str = "medlake"
) -> dict[str, Any]:
    """A whole ``profiles.yml`` mapping with the single target ``spark`` (dump it with ``yaml.safe_dump``)."""
    return {profile: {"target": "spark", "outputs": {"spark": dbt_spark_output(cfg, method)}}}
