"""dagster-dbt's view of the dbt project: the translator and the ``@dbt_assets`` definition it builds.

Importing this module imports dagster-dbt and dbt-core (several seconds), so only two places do: the step that runs
dbt (:mod:`medlake.dbt.build`) and the one-off refresh of the theme specs cached beside the manifest
(:mod:`medlake.dbt.specs`). Loading the definitions reads that cache instead.
"""

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from medlake.dbt.project import DBT_PROJECT_DIR, manifest_path
from medlake.layers import Layer

__all__ = ["THEME_ASSETS_NAME", "MedlakeDbtTranslator", "dbt_theme_assets"]

THEME_ASSETS_NAME = "theme_assets"


class MedlakeDbtTranslator(DagsterDbtTranslator):
    """dbt sources are our DWD assets; dbt models are subject themes."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([*Layer.DWD.key_prefix, dbt_resource_props["name"]])
        return AssetKey([*Layer.THEME.key_prefix, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return Layer.THEME.group


@cache
def dbt_theme_assets(project_dir: Path = DBT_PROJECT_DIR) -> AssetsDefinition:
    """The subject themes exactly as ``@dbt_assets`` defines them (specs, checks, and the manifest and translator
    dagster-dbt reads back when it runs dbt). Its body never runs: ``assets.themes`` executes the themes."""

    @dbt_assets(
        manifest=manifest_path(project_dir),
        dagster_dbt_translator=MedlakeDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        name=THEME_ASSETS_NAME,
    )
    def _themes(context: AssetExecutionContext) -> Iterator[Any]:  # pragma: no cover - never executed
        raise NotImplementedError("the themes run through assets.themes")
        yield  # a generator, as dagster expects of a body with several outputs

    return _themes
