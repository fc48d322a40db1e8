"""The composition root: wires assets, checks, sensors and resources together. Computes nothing."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from assets.dwd import dwd_assets
from assets.metrics import metric_assets
from assets.ods import ods_assets
from assets.themes import theme_assets
from medlake.resources import resources_for
from sensors.landing import build_landing_sensor

__all__ = ["defs"]

everything = define_asset_job("medlake_all", selection="*", description="Land, model and measure everything")

defs = Definitions(
    assets=[*ods_assets, *dwd_assets, theme_assets, *metric_assets],
    jobs=[everything],
    sensors=[build_landing_sensor(everything)],
    resources=resources_for(),
)
