"""Subject themes: the dbt project's marts, each an asset downstream of the DWD tables it reads."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, multi_asset

from medlake.dbt.specs import theme_specs
from medlake.resources import DbtResource, LakeResource

__all__ = ["theme_assets"]

_THEMES = theme_specs()  # what @dbt_assets defines, without importing dagster-dbt (see medlake.dbt.specs)


@multi_asset(
    name=_THEMES.name, specs=_THEMES.specs, check_specs=_THEMES.check_specs, can_subset=True,
    op_tags=_THEMES.op_tags, allow_arbitrary_check_specs=True,
)
def theme_assets(context: AssetExecutionContext, dbt: DbtResource, lake: LakeResource) -> Iterator[Any]:
    from medlake.dbt.build import build_themes

    yield from build_themes(context, dbt, lake)
