"""Dagster resources, chosen per engine by a dict lookup (never if-branches)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr

from medlake.config import DEFAULT_MAX_FILE_BYTES, Settings, settings
from medlake.dbt.project import DBT_PROJECT_DIR, dbt_executable, write_profiles
from medlake.engine import Engine, get_engine
from medlake.engine.spark_session import get_spark

__all__ = ["LakeResource", "SparkSessionResource", "resources_for"]


class SparkSessionResource(LazyPySparkResource):
    """dagster-pyspark's lazily started SparkSession resource, started the medlake way
    (:func:`medlake.engine.spark_session.get_spark`: Delta extension, pinned delta-spark jars, wall-clock
    timestamps, ANSI SQL, the driver's Python for UDF workers), with ``spark_config`` applied last. One session per
    process: the lake engine, the Spark checks and the EMPI all use it; assets of your own can ask for it as the
    ``pyspark`` resource."""

    home: str
    spark_config: dict[str, Any] = Field(default_factory=dict)

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = get_spark(Settings(home=Path(self.home), engine="spark"), self.spark_config)


class LakeResource(ConfigurableResource):
    """The lake root and the engine that reads and writes its Delta tables (on Spark: through ``spark``)."""

    home: str
    engine_name: str = "polars"
    lake_uri: str = ""  # MEDLAKE_LAKE_URI; empty: the lake is $MEDLAKE_HOME/lake
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # MEDLAKE_MAX_FILE_BYTES
    time_travel_days: float = 7.0  # MEDLAKE_TIME_TRAVEL_DAYS
    spark: SparkSessionResource | None = None
    _engine: Any = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        return Settings(home=Path(self.home), engine=self.engine_name, lake_uri=self.lake_uri or None,
                        max_file_bytes=self.max_file_bytes, time_travel_days=self.time_travel_days)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _ENGINE_FOR_LAKE.get(self.engine_name, _named_engine)(self)
        return self._engine


def _named_engine(lake: LakeResource) -> Engine:
    return get_engine(lake.engine_name)


def _spark_engine(lake: LakeResource) -> Engine:
    from medlake.engine.spark_engine import SparkEngine

    session = lake.spark or SparkSessionResource(home=lake.home)
    return SparkEngine(cfg=lake.settings, session=lambda: session.spark_session)


# engine name → how the lake resource builds it; engines not listed come from medlake.engine.get_engine
_ENGINE_FOR_LAKE: dict[str, Callable[[LakeResource], Engine]] = {"spark": _spark_engine}


def _dbt(current: Settings) -> DbtCliResource:
    """dbt on the engine's target, with the profile written from ``current`` (dbt reads no medlake variables)."""
    return DbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(write_profiles(current)),
                          target=current.engine, dbt_executable=dbt_executable())


def _spark_resources(current: Settings, dbt: DbtCliResource) -> dict[str, Any]:
    spark = SparkSessionResource(home=str(current.home))
    lake = LakeResource(home=str(current.home), engine_name="spark", lake_uri=current.lake_uri or "", spark=spark,
                        max_file_bytes=current.max_file_bytes, time_travel_days=current.time_travel_days)
    return {"lake": lake, "pyspark": spark, "dbt": dbt}


def resources_for(current: Settings | None = None) -> dict[str, Any]:
    """The resources of one environment. ``MEDLAKE_ENGINE`` picks the row; the home comes from ``MEDLAKE_HOME``."""
    current = current or settings()
    home, lake_uri = str(current.home), current.lake_uri or ""
    return {
        "polars": lambda: {"lake": LakeResource(home=home, engine_name="polars", lake_uri=lake_uri,
                                                max_file_bytes=current.max_file_bytes,
                                                time_travel_days=current.time_travel_days),
                           "dbt": _dbt(current)},
        "spark": lambda: _spark_resources(current, _dbt(current)),
    }[current.engine]()
