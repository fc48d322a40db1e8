"""The composition root: wires assets, checks, sensors and resources together for one :class:`Settings`.
Computes nothing."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, Definitions, define_asset_job

from assets.dwd import dwd_assets
from assets.empi import master_patient_index
from assets.metrics import metric_assets
from assets.ods import ods_assets
from assets.standard_artefacts import GOVERNANCE_GROUP, generated_checks, governance_assets
from assets.themes import theme_assets
from assets.workflows import governed_assets
from checks import build_asset_checks
from jobs.maintenance import table_maintenance, table_maintenance_schedule
from medlake.config import Settings, settings
from medlake.layers import Layer
from medlake.lineage import standards_watch
from medlake.resources import resources_for
from medlake.standards.registry import standards_dir
from sensors.landing import build_landing_sensor
from sensors.standard_change import build_standard_change_sensor

__all__ = ["build_definitions", "defs"]


def build_definitions(current: Settings) -> Definitions:
    """Every asset, check, job, schedule and sensor, with the resources of ``current``."""
    everything = define_asset_job(
        "medlake_all", selection=AssetSelection.all() - AssetSelection.groups(GOVERNANCE_GROUP),
        description="Land, govern, model and measure everything",
    )
    standard_change = build_standard_change_sensor(
        standards_dir=standards_watch.standards_data_dir, active_version=standards_watch.active_standards_version,
        diff=standards_watch.standards_changes, graph=standards_watch.standards_lineage_graph,
        check_regeneration=[generated_checks.key.path],
    )
    return Definitions(
        assets=[*ods_assets, *dwd_assets, master_patient_index, theme_assets, *metric_assets,
                *governed_assets(current), *governance_assets],
        asset_checks=build_asset_checks(lambda table: AssetKey([*Layer.DWD.key_prefix, table]),
                                        standards_dir=standards_dir(current)),
        jobs=[everything, table_maintenance],
        schedules=[table_maintenance_schedule],
        sensors=[build_landing_sensor(everything), standard_change],
        resources=resources_for(current),
    )


defs = build_definitions(settings())
