"""Engines run the same operator logic on different compute: ``polars`` (embedded, default) or ``spark``.

The engine's name (``Settings.engine``) is looked up here and nowhere else: each row says how to build the engine,
which Dagster resources it brings, and its dbt target's output. Everything outside this package receives the engine
object and calls its capabilities (:class:`medlake.engine.base.Engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medlake.engine.base import Engine, WriteResult, merge_predicate
from medlake.errors import ConfigurationError

if TYPE_CHECKING:
    from medlake.config import Settings

__all__ = [
    "SESSION_RESOURCE",
    "Engine",
    "WriteResult",
    "dbt_output",
    "engine_resources",
    "get_engine",
    "lake_engine",
    "merge_predicate",
]

SESSION_RESOURCE = "pyspark"  # the Dagster resource key of an engine's session (dagster-pyspark's convention)


@dataclass(frozen=True)
class _EngineRow:
    build: Callable[[], Engine]  # with the process's settings
    for_lake: Callable[[Settings, Any], Engine]  # with given settings and (Spark) a session resource or None
    resources: Callable[[Settings], dict[str, Any]]  # Dagster resources besides the lake and dbt
    dbt_output: Callable[[Settings], dict[str, Any]]  # the dbt target's output


def _polars() -> Engine:
    from medlake.engine.polars_engine import PolarsEngine

    return PolarsEngine()


def _spark() -> Engine:
    from medlake.engine.spark_engine import SparkEngine  # imports pyspark lazily, with a clear error

    return SparkEngine()


def _spark_session_resource(settings: Settings) -> Any:
    from medlake.engine.spark_resource import SparkSessionResource

    return SparkSessionResource.from_settings(settings)


def _spark_for_lake(settings: Settings, session: Any) -> Engine:
    from medlake.engine.spark_engine import SparkEngine

    resource = session if session is not None else _spark_session_resource(settings)
    return SparkEngine(cfg=settings, session=lambda: resource.spark_session)


def _duckdb_output(settings: Settings) -> dict[str, Any]:
    from medlake.engine.dbt_duckdb_profile import dbt_duckdb_output

    return dbt_duckdb_output(settings)


def _spark_output(settings: Settings) -> dict[str, Any]:
    from medlake.engine.dbt_spark_profile import dbt_spark_output

    return dbt_spark_output(settings)


_ENGINES: dict[str, _EngineRow] = {
    "polars": _EngineRow(build=_polars, for_lake=lambda settings, session: _polars(), resources=lambda settings: {},
                         dbt_output=_duckdb_output),
    "spark": _EngineRow(build=_spark, for_lake=_spark_for_lake,
                        resources=lambda settings: {SESSION_RESOURCE: _spark_session_resource(settings)},
                        dbt_output=_spark_output),
}


def _row(name: str) -> _EngineRow:
    try:
        return _ENGINES[name]
    except KeyError:
        raise ConfigurationError(f"unknown engine {name!r}; expected one of {', '.join(_ENGINES)}") from None


def get_engine(name: str) -> Engine:
    """The engine named by ``MEDLAKE_ENGINE``: a dict lookup, no branches."""
    return _row(name).build()


def lake_engine(settings: Settings, session: Any = None) -> Engine:
    """The engine of ``settings`` for a lake resource; on Spark on ``session`` (a dagster-pyspark resource; without
    one, its own)."""
    return _row(settings.engine).for_lake(settings, session)


def engine_resources(settings: Settings) -> dict[str, Any]:
    """The Dagster resources ``settings``' engine brings besides the lake and dbt (Spark: its session resource,
    under :data:`SESSION_RESOURCE`)."""
    return _row(settings.engine).resources(settings)


def dbt_output(settings: Settings) -> dict[str, Any]:
    """The output of the dbt target of ``settings``' engine (the target is named after the engine)."""
    return _row(settings.engine).dbt_output(settings)
