"""Dagster resources, chosen per engine by a dict lookup (never if-branches)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from dagster_pyspark import LazyPySparkResource
from packaging.version import Version
from pydantic import Field, PrivateAttr

from medlake.config import Settings, settings
from medlake.engine import Engine, get_engine
from medlake.engine.spark_session import get_spark

__all__ = ["DBT_PROJECT_DIR", "DbtResource", "LakeResource", "SparkSessionResource", "resources_for"]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


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
    spark: SparkSessionResource | None = None
    _engine: Any = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        return Settings(home=Path(self.home), engine=self.engine_name, lake_uri=self.lake_uri or None)

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


class DbtResource(DbtCliResource):
    """dagster-dbt's CLI resource without two things it does in this process before every invocation, which took
    ~50 s of the demo's theme step on a busy machine: running ``dbt --version`` (a dbt start-up, plus a PyPI
    request for the latest release) to learn the version of the dbt it runs — that dbt is the pinned dbt-core
    installed beside this interpreter (``_dbt``), so its version is read from the package metadata — and building a
    dbt Core adapter (profile, macros, partial-parse manifest), which serves only ``fetch_column_metadata`` /
    ``fetch_row_counts``, neither of which medlake calls. dbt itself runs in its own process either way."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


def _dbt(target: str, profiles_dir: Path = DBT_PROJECT_DIR) -> DbtCliResource:
    return DbtResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(profiles_dir),
        target=target,
        dbt_executable=str(Path(sys.executable).parent / "dbt"),  # the dbt installed beside medlake
    )


def _spark_profiles_dir(current: Settings) -> Path:
    """A profiles.yml whose ``spark`` target is built from the same settings as the engine's SparkSession
    (``MEDLAKE_DBT_SPARK_METHOD``: in-process session by default, thrift/http to a cluster), under ``work/``."""
    import yaml

    from medlake.engine.dbt_spark_profile import dbt_spark_profile

    folder = current.work / "dbt" / "spark-profile"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump(dbt_spark_profile(current), sort_keys=False), encoding="utf-8")
    return folder


def _spark_resources(current: Settings, dbt: DbtCliResource) -> dict[str, Any]:
    spark = SparkSessionResource(home=str(current.home))
    lake = LakeResource(home=str(current.home), engine_name="spark", lake_uri=current.lake_uri or "", spark=spark)
    return {"lake": lake, "pyspark": spark, "dbt": dbt}


def resources_for(current: Settings | None = None) -> dict[str, Any]:
    """The resources of one environment. ``MEDLAKE_ENGINE`` picks the row; the home comes from ``MEDLAKE_HOME``."""
    current = current or settings()
    home, lake_uri = str(current.home), current.lake_uri or ""
    return {
        "polars": lambda: {"lake": LakeResource(home=home, engine_name="polars", lake_uri=lake_uri),
                           "dbt": _dbt("polars")},
        "spark": lambda: _spark_resources(current, _dbt("spark", _spark_profiles_dir(current))),
    }[current.engine]()
