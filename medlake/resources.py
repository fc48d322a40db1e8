"""Dagster resources, chosen per engine by a dict lookup (never if-branches).

Loading the definitions imports none of the engines' libraries: dagster-dbt (and dbt-core) are imported when dbt
runs, dagster-pyspark only by the Spark row (:mod:`medlake.engine.spark_resource`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from medlake.config import Settings, settings

if TYPE_CHECKING:
    from dagster_dbt import DbtCliInvocation, DbtCliResource

    from medlake.engine import Engine
    from medlake.engine.spark_resource import SparkSessionResource

__all__ = ["DBT_PROJECT_DIR", "DbtResource", "LakeResource", "SparkSessionResource", "resources_for"]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


def __getattr__(name: str) -> Any:
    """``SparkSessionResource`` is importable from here, but loads dagster-pyspark only when asked for."""
    if name == "SparkSessionResource":
        from medlake.engine.spark_resource import SparkSessionResource

        return SparkSessionResource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DbtResource(ConfigurableResource):
    """The dbt project and target to run; dagster-dbt's ``DbtCliResource`` is built (and dbt-core imported) only
    when dbt runs, so loading the definitions stays cheap."""

    project_dir: str
    profiles_dir: str
    target: str
    dbt_executable: str

    def cli_resource(self) -> DbtCliResource:
        from dagster_dbt import DbtCliResource

        return DbtCliResource(project_dir=self.project_dir, profiles_dir=self.profiles_dir, target=self.target,
                              dbt_executable=self.dbt_executable)

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        """``DbtCliResource.cli``: run a dbt command (inside ``@dbt_assets``, pass ``context=``)."""
        return self.cli_resource().cli(args, **kwargs)


class LakeResource(ConfigurableResource):
    """The lake root and the engine that reads and writes its Delta tables (on Spark: through ``spark``)."""

    home: str
    engine_name: str = "polars"
    lake_uri: str = ""  # MEDLAKE_LAKE_URI; empty: the lake is $MEDLAKE_HOME/lake
    spark: ConfigurableResource | None = None  # a SparkSessionResource on the Spark row
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
    from medlake.engine import get_engine

    return get_engine(lake.engine_name)


def _spark_engine(lake: LakeResource) -> Engine:
    from medlake.engine.spark_engine import SparkEngine
    from medlake.engine.spark_resource import SparkSessionResource

    session = lake.spark or SparkSessionResource(home=lake.home)
    return SparkEngine(cfg=lake.settings, session=lambda: session.spark_session)


# engine name → how the lake resource builds it; engines not listed come from medlake.engine.get_engine
_ENGINE_FOR_LAKE: dict[str, Callable[[LakeResource], Engine]] = {"spark": _spark_engine}


def _dbt(target: str, profiles_dir: Path = DBT_PROJECT_DIR) -> DbtResource:
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


def _spark_resources(current: Settings, dbt: DbtResource) -> dict[str, Any]:
    from medlake.engine.spark_resource import SparkSessionResource

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
