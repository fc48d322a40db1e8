"""Governance assets: artefacts derived from the data standards (re-materialized when a standard changes)."""


from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from medlake.lineage.standards_watch import active_standards_version, standards_data_dir
from medlake.resources import LakeResource
from medlake.standards import Registry, generate_checks
from medlake.standards.contracts import default_checks_dir

__all__ = ["GOVERNANCE_GROUP", "generated_checks", "governance_assets"]

GOVERNANCE_GROUP = "governance"


@asset(
    key=[GOVERNANCE_GROUP, "generated_checks"],
    group_name=GOVERNANCE_GROUP,
    kinds={"soda", "yaml"},
    description="Soda check contracts of every DWD table, regenerated from the active standards release "
                "(the code location must reload to pick up new asset checks).",
)
def generated_checks(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    current = lake.settings
    registry = Registry.load(active_standards_version(current), standards_data_dir(current))
    checks_dir = default_checks_dir(current)
    paths = generate_checks(registry, checks_dir)
    context.log.info(f"regenerated {len(paths)} check contracts from standards {registry.version}")
    return MaterializeResult(
        metadata={
            "standards_version": registry.version,
            "contracts": len(paths),
            "checks_dir": MetadataValue.path(str(checks_dir)),
        }
    )


governance_assets: list[AssetsDefinition] = [generated_checks]
