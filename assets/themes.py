"""Subject themes: the dbt project's marts, each an asset downstream of the DWD tables it reads."""


from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from medlake.dbt.project import dbt_vars, manifest_path
from medlake.lake.locks import table_lock
from medlake.layers import Layer
from medlake.lineage.materialization import dagster_parent, emit_theme_lineage
from medlake.resources import LakeResource

__all__ = ["MedlakeDbtTranslator", "theme_assets"]


class MedlakeDbtTranslator(DagsterDbtTranslator):
    """dbt sources are our DWD assets; dbt models are subject themes."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([*Layer.DWD.key_prefix, dbt_resource_props["name"]])
        return AssetKey([*Layer.THEME.key_prefix, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return Layer.THEME.group


@dbt_assets(
    manifest=manifest_path(),
    dagster_dbt_translator=MedlakeDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
)
def theme_assets(context: AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource) -> Iterator[Any]:
    (lake.settings.work / "dbt" / "external").mkdir(parents=True, exist_ok=True)  # dbt-duckdb's parquet staging
    with table_lock(lake.settings, "theme"):  # one dbt build at a time: it shares its DuckDB file and staging
        invocation = dbt.cli(["build", "--vars", dbt_vars(lake.settings)], context=context)
        try:
            yield from invocation.stream()
        finally:  # failed models get their FAIL events too
            target = invocation.project_dir / invocation.target_path  # this invocation's own artifacts
            emit_theme_lineage(target, lake.settings, dagster_parent(context))
