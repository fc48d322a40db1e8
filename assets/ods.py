"""ODS assets: one per source table, landing delivered files as they are."""


from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from medlake.layers import Layer
from medlake.resources import LakeResource
from medlake.sources import SOURCES, SourceTable

__all__ = ["build_ods_asset", "ods_assets"]


def build_ods_asset(spec: SourceTable) -> AssetsDefinition:
    @asset(
        name=spec.name,
        key_prefix=Layer.ODS.key_prefix,
        group_name=Layer.ODS.group,
        kinds={"delta", "python"},
        description=f"{spec.label} ({spec.name}) as delivered by {spec.delivered_by} front-end machines.",
        metadata={"medlake/layer": Layer.ODS.value, "medlake/table": spec.name},
    )
    def _ods(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        from medlake.lake.ods import LANDED, load_source_table, ods_path
        from medlake.lineage.derivation import ods_column_lineage
        from medlake.lineage.materialization import materialization_lineage

        path = ods_path(lake.settings, spec.name)
        with materialization_lineage(context, lake.settings, outputs=[path]) as lineage:
            report = load_source_table(lake.engine, lake.settings, spec)
            landed = [lake.settings.landing / f.source_file for f in report.files if f.status in LANDED]
            for delivered in landed:
                lineage.record_input(delivered)
            lineage.record_output(path, column_lineage=ods_column_lineage(spec, landed))
        mismatched = [f"{f.source_file}: {f.message}" for f in report.files
                      if f.status not in ("loaded", "reconciled", "skipped")] + report.batches_refused
        for line in mismatched:
            context.log.warning(line)
        return MaterializeResult(
            metadata={
                "rows_loaded": report.rows_loaded,
                "rows_quarantined": report.rows_quarantined,
                "files_loaded": report.files_loaded,
                "files_skipped": report.files_skipped,
                "files_not_reconciled": len(mismatched),
                "dagster/row_count": lake.engine.row_count(path),
                "table_path": MetadataValue.path(path),
            }
        )

    return _ods


ods_assets = [build_ods_asset(spec) for spec in SOURCES]
