"""Dagster resources; what differs per engine comes from :mod:`medlake.engine` (never if-branches here).

Loading the definitions imports none of the engines' libraries: dagster-dbt (and dbt-core) are imported when dbt
runs, dagster-pyspark only by the Spark row (:mod:`medlake.engine.spark_resource`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr

from medlake.config import DEFAULT_MAX_FILE_BYTES, Settings, settings
from medlake.dbt.project import DBT_PROJECT_DIR, dbt_executable, write_profiles

if TYPE_CHECKING:
    from dagster_dbt import DbtCliInvocation, DbtCliResource

    from medlake.engine import Engine
    from medlake.engine.spark_resource import SparkSessionResource

__all__ = ["DbtResource", "LakeResource", "SparkSessionResource", "resources_for"]


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
        from medlake.dbt.cli_resource import MedlakeDbtCliResource

        return MedlakeDbtCliResource(project_dir=self.project_dir, profiles_dir=self.profiles_dir, target=self.target,
                              dbt_executable=self.dbt_executable)

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        """``DbtCliResource.cli``: run a dbt command (inside ``@dbt_assets``, pass ``context=``)."""
        return self.cli_resource().cli(args, **kwargs)


class LakeResource(ConfigurableResource):
    """The lake root and the engine that reads and writes its Delta tables (on Spark: through ``spark``), the rest
    of the :class:`~medlake.config.Settings` (``options``) and the secrets, bound as Dagster ``EnvVar`` values so their
    values are read when a run starts and never shown in the UI or written into ``Settings``."""

    home: str
    engine_name: str = "polars"
    lake_uri: str = ""  # MEDLAKE_LAKE_URI; empty: the lake is $MEDLAKE_HOME/lake
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # MEDLAKE_MAX_FILE_BYTES
    time_travel_days: float = 7.0  # MEDLAKE_TIME_TRAVEL_DAYS
    # the other Settings fields (standards, checks and workflow folders, Spark, lineage), as Settings.to_config
    options: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)  # secret name → value (EnvVar(name) from from_settings)
    spark: ConfigurableResource | None = None  # a SparkSessionResource on the Spark row
    _engine: Any = PrivateAttr(default=None)

    @classmethod
    def from_settings(
        cls, current: Settings, spark: ConfigurableResource | None = None, secrets: Mapping[str, str] | None = None
    ) -> LakeResource:
        """The resource carrying every field of ``current`` (the inverse of :attr:`settings`); each secret set
        in the environment (``current.secrets``) is bound as ``EnvVar(name)``, unless ``secrets`` gives its value
        (tests, benchmarks)."""
        config = current.to_config()
        top = {name: config.pop(name) for name in _TOP_FIELDS if name in config}
        bound = {**{name: EnvVar(name) for name in current.secrets}, **(secrets or {})}
        return cls(home=top["home"], engine_name=top["engine"], lake_uri=top.get("lake_uri", ""),
                   max_file_bytes=top["max_file_bytes"], time_travel_days=top["time_travel_days"], options=config,
                   secrets=bound, spark=spark)

    @property
    def settings(self) -> Settings:
        return Settings.from_config({
            **self.options, "home": self.home, "engine": self.engine_name, "lake_uri": self.lake_uri or None,
            "max_file_bytes": self.max_file_bytes, "time_travel_days": self.time_travel_days,
        })

    def secret(self, name: str) -> str:
        """The value of secret ``name`` (e.g. ``MEDLAKE_MASK_SALT``); empty when it is not bound."""
        return self.secrets.get(name, "")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from medlake.engine import lake_engine

            self._engine = lake_engine(self.settings, self.spark)
        return self._engine


_TOP_FIELDS = ("home", "engine", "lake_uri", "max_file_bytes", "time_travel_days")


def _dbt(current: Settings) -> DbtResource:
    """dbt on the engine's target, with the profile written from ``current`` (dbt reads no medlake variables)."""
    return DbtResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(write_profiles(current)),
                       target=current.engine, dbt_executable=dbt_executable())


def resources_for(current: Settings | None = None, secrets: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of ``current`` (default: :func:`medlake.config.settings`): the lake, the engine's own (Spark:
    ``pyspark``) and dbt. ``secrets`` gives secret values directly (tests, benchmarks) instead of binding them as
    EnvVars."""
    from medlake.engine import SESSION_RESOURCE, engine_resources

    current = current or settings()
    extra = engine_resources(current)
    lake = LakeResource.from_settings(current, spark=extra.get(SESSION_RESOURCE), secrets=secrets)
    return {"lake": lake, **extra, "dbt": _dbt(current)}
