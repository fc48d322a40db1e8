"""DWD assets: typed, standardized, MERGE-upserted detail tables, one per source table."""


from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset

from medlake.lake.dwd import dwd_key
from medlake.layers import Layer
from medlake.resources import LakeResource
from medlake.sources import SOURCES, SourceTable

__all__ = ["build_dwd_asset", "dwd_assets"]


def build_dwd_asset(spec: SourceTable) -> AssetsDefinition:
    @asset(
        name=spec.name,
        key_prefix=Layer.DWD.key_prefix,
        group_name=Layer.DWD.group,
        kinds={"delta", "python"},
        deps=[AssetKey([*Layer.ODS.key_prefix, spec.name])],
        description=f"{spec.label}: typed and standardized, upserted on ({', '.join(dwd_key(spec))}).",
        metadata={"medlake/layer": Layer.DWD.value, "medlake/table": spec.name,
                  "medlake/merge_key": ", ".join(dwd_key(spec))},
    )
    def _dwd(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        from medlake.lake.dwd import dwd_path, load_dwd_table
        from medlake.lake.ods import ods_path
        from medlake.lineage.derivation import dwd_column_lineage
        from medlake.lineage.materialization import materialization_lineage

        source, path = ods_path(lake.settings, spec.name), dwd_path(lake.settings, spec.name)
        with materialization_lineage(context, lake.settings, [source], [path],
                                     lambda: dwd_column_lineage(spec, source)):
            report = load_dwd_table(lake.engine, lake.settings, spec)
        return MaterializeResult(
            metadata={
                "rows_read": report.rows_read,
                "rows_inserted": report.rows_inserted,
                "rows_updated": report.rows_updated,
                "rows_quarantined": report.rows_quarantined,
                "fields_nulled": report.fields_nulled,
                "ods_watermark": report.watermark,
                "dagster/row_count": lake.engine.row_count(path),
                "table_path": MetadataValue.path(path),
            }
        )

    return _dwd


dwd_assets = [build_dwd_asset(spec) for spec in SOURCES]
