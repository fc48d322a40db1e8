"""The composition root: wires assets, checks, sensors and resources together. Computes nothing."""

from __future__ import annotations

from dagster import AssetKey, Definitions, define_asset_job

from assets.dwd import dwd_assets
from assets.governed import governed_assets
from assets.metrics import metric_assets
from assets.ods import ods_assets
from assets.themes import theme_assets
from checks import build_asset_checks
from medlake.layers import Layer
from medlake.resources import resources_for
from sensors.landing import build_landing_sensor

__all__ = ["defs"]

everything = define_asset_job("medlake_all", selection="*", description="Land, govern, model and measure everything")

defs = Definitions(
    assets=[*ods_assets, *dwd_assets, theme_assets, *metric_assets, *governed_assets],
    asset_checks=build_asset_checks(lambda table: AssetKey([*Layer.DWD.key_prefix, table])),
    jobs=[everything],
    sensors=[build_landing_sensor(everything)],
    resources=resources_for(),
)
