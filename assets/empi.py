"""The master patient index (EMPI) over the DWD patient table: stable master IDs, golden records, audit, review."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from medlake.layers import Layer
from medlake.resources import LakeResource

__all__ = ["master_patient_index"]


@asset(
    key=AssetKey([*Layer.DWD.key_prefix, "master_patient_index"]),
    group_name=Layer.DWD.group,
    kinds={"delta", "splink"},
    deps=[AssetKey([*Layer.DWD.key_prefix, "patient"])],
    description="One master patient ID per person across institutions, stable across loads "
    "(with golden_record, empi_audit, empi_review and empi_manual_decisions beside it).",
    metadata={"medlake/layer": Layer.DWD.value},
)
def master_patient_index(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    from medlake.empi import EmpiOperator  # Splink, pypinyin: loaded by the step that links, not by the definitions
    from medlake.lake.dwd import dwd_path
    from medlake.operators import OperatorContext

    ctx = OperatorContext(lake.engine, lake.settings, "dwd.patient", context.run_id, context.log)
    result = EmpiOperator({}).run(lake.engine.read(dwd_path(lake.settings, "patient")), ctx)
    metrics = result.metrics
    path = str(lake.settings.table_path(Layer.DWD.value, "master_patient_index"))
    return MaterializeResult(
        metadata={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float | str)},
            "dagster/row_count": lake.engine.row_count(path),
            "table_path": MetadataValue.path(path),
        }
    )
