"""The ``pyspark`` resource: dagster-pyspark's lazily started SparkSession, started the medlake way.

Imported only by the Spark row of :func:`medlake.resources.resources_for` (and by code that asks for it by name),
so the embedded engine never needs the Spark extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from medlake.config import Settings, SparkSettings
from medlake.engine.spark_session import get_spark

__all__ = ["SparkSessionResource"]


class SparkSessionResource(LazyPySparkResource):
    """dagster-pyspark's lazily started SparkSession resource, started the medlake way
    (:func:`medlake.engine.spark_session.get_spark`: Delta extension, pinned delta-spark jars, wall-clock
    timestamps, ANSI SQL, the driver's Python for UDF workers), with ``spark_config`` applied last. One session per
    process: the lake engine, the Spark checks and the EMPI all use it; assets of your own can ask for it as the
    ``pyspark`` resource."""

    home: str
    spark_config: dict[str, Any] = Field(default_factory=dict)
    spark_settings: dict[str, Any] = Field(default_factory=dict)  # a SparkSettings' fields (MEDLAKE_SPARK_*)

    @classmethod
    def from_settings(cls, current: Settings) -> SparkSessionResource:
        return cls(home=str(current.home), spark_settings=current.to_config()["spark"])

    def _init_session(self) -> None:
        if self._spark_session is None:
            cfg = Settings(home=Path(self.home), engine="spark", spark=SparkSettings(**self.spark_settings))
            self._spark_session = get_spark(cfg, self.spark_config)
