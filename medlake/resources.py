"""Dagster resources, chosen per engine by a dict lookup (never if-branches)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from pydantic import PrivateAttr

from medlake.config import Settings, settings
from medlake.engine import Engine, get_engine

__all__ = ["DBT_PROJECT_DIR", "LakeResource", "resources_for"]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


class LakeResource(ConfigurableResource):
    """The lake root and the engine that reads and writes its Delta tables."""

    home: str
    engine_name: str = "polars"
    lake_uri: str = ""  # MEDLAKE_LAKE_URI; empty: the lake is $MEDLAKE_HOME/lake
    _engine: Any = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        return Settings(home=Path(self.home), engine=self.engine_name, lake_uri=self.lake_uri or None)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.engine_name)
        return self._engine


def _dbt(target: str, profiles_dir: Path = DBT_PROJECT_DIR) -> DbtCliResource:
    return DbtCliResource(
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


def resources_for(current: Settings | None = None) -> dict[str, Any]:
    """The resources of one environment. ``MEDLAKE_ENGINE`` picks the row; the home comes from ``MEDLAKE_HOME``."""
    current = current or settings()
    home, lake_uri = str(current.home), current.lake_uri or ""
    return {
        "polars": lambda: {"lake": LakeResource(home=home, engine_name="polars", lake_uri=lake_uri),
                           "dbt": _dbt("polars")},
        "spark": lambda: {"lake": LakeResource(home=home, engine_name="spark", lake_uri=lake_uri),
                          "dbt": _dbt("spark", _spark_profiles_dir(current))},
    }[current.engine]()
