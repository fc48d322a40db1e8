"""Run ``dbt build`` for the subject themes, inside the step that materializes them.

The themes are defined from the cached specs (:mod:`medlake.dbt.specs`), which carry no dagster-dbt objects;
dagster-dbt finds the manifest, the translator and the dbt selection of a subset on the executing assets
definition, so the invocation sees the equivalent ``@dbt_assets`` definition through :class:`_DbtAssetsView`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from medlake.config import LINEAGE_API_KEY
from medlake.dbt.project import dbt_vars
from medlake.dbt.translator import dbt_theme_assets
from medlake.errors import ConfigurationError
from medlake.lake.locks import table_lock
from medlake.lineage.materialization import dagster_parent, emit_theme_lineage

if TYPE_CHECKING:
    from dagster import AssetExecutionContext, AssetsDefinition

    from medlake.resources import DbtResource, LakeResource

__all__ = ["build_themes"]


class _DbtAssetsView:
    """The step's execution context, but with ``assets_def`` the ``@dbt_assets`` definition of the same keys and
    checks (subset the same way), which is what dagster-dbt reads its manifest and translator from."""

    def __init__(self, context: AssetExecutionContext, assets_def: AssetsDefinition) -> None:
        self._context = context
        self.assets_def = assets_def

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _dbt_view(context: AssetExecutionContext) -> _DbtAssetsView:
    executing, full = context.assets_def, dbt_theme_assets()
    if set(full.keys) != set(executing.node_keys_by_output_name.values()):
        raise ConfigurationError("the cached theme specs do not match the dbt manifest; delete them to rebuild")
    subset = executing.keys_by_output_name != executing.node_keys_by_output_name or (
        executing.check_specs_by_output_name != executing.node_check_specs_by_output_name)
    view = full.subset_for(context.selected_asset_keys, context.selected_asset_check_keys) if subset else full
    return _DbtAssetsView(context, view)


def build_themes(context: AssetExecutionContext, dbt: DbtResource, lake: LakeResource) -> Iterator[Any]:
    """``dbt build`` of the selected themes, streaming their materializations and test results as checks, then
    the themes' OpenLineage events."""
    (lake.settings.work / "dbt" / "external").mkdir(parents=True, exist_ok=True)  # dbt-duckdb's parquet staging
    with table_lock(lake.settings, "theme"):  # one dbt build at a time: it shares its DuckDB file and staging
        invocation = dbt.cli(["build", "--vars", dbt_vars(lake.settings)], context=_dbt_view(context))
        try:
            yield from invocation.stream()
        finally:  # failed models get their FAIL events too
            target = invocation.project_dir / invocation.target_path  # this invocation's own artifacts
            emit_theme_lineage(target, lake.settings, dagster_parent(context), api_key=lake.secret(LINEAGE_API_KEY))
