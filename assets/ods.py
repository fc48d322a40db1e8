"""ODS assets: one per source table, landing delivered files as they are."""

from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from medlake.layers import Layer
from medlake.resources import LakeResource
from medlake.sources import SOURCES, SourceTable

if TYPE_CHECKING:
    from medlake.lake.ods import FileLoad

__all__ = ["build_ods_asset", "ods_assets"]


def _not_reconciled(files: "list[FileLoad]") -> MetadataValue:
    """The delivered files whose rows or amounts differ from their manifests, one markdown row each."""
    rows = ["| file | status | difference |", "|---|---|---|"]
    rows += [f"| {f.source_file} | {f.status} | {f.message.replace('|', '/')} |" for f in files]
    return MetadataValue.md("\n".join(rows))


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
        from medlake.lake.ods import LANDED, load_log_path, load_source_table, ods_path
        from medlake.lineage.derivation import ods_column_lineage
        from medlake.lineage.materialization import materialization_lineage

        path = ods_path(lake.settings, spec.name)
        with materialization_lineage(context, lake.settings, outputs=[path]) as lineage:
            report = load_source_table(lake.engine, lake.settings, spec)
            landed = [lake.settings.landing / f.source_file for f in report.files if f.status in LANDED]
            for delivered in landed:
                lineage.record_input(delivered)
            lineage.record_output(path, column_lineage=ods_column_lineage(spec, landed))
        mismatched = [f for f in report.files if f.status not in ("loaded", "reconciled", "skipped")]
        if mismatched:  # one line; the per-file detail is in the metadata and the load log
            audit = load_log_path(lake.settings, spec.name)
            context.log.warning(f"{len(mismatched)} of {len(report.files)} delivered files not reconciled with their "
                                f"manifests: see files_not_reconciled_detail here, {audit} and `medlake status`")
        if report.batches_refused:
            context.log.warning(f"{len(report.batches_refused)} batch folder(s) refused: "
                                f"{'; '.join(report.batches_refused[:3])} (see quarantine/ods_{spec.name})")
        return MaterializeResult(
            metadata={
                "rows_loaded": report.rows_loaded,
                "rows_quarantined": report.rows_quarantined,
                "files_loaded": report.files_loaded,
                "files_skipped": report.files_skipped,
                "files_not_reconciled": len(mismatched),
                "batches_refused": len(report.batches_refused),
                **({"files_not_reconciled_detail": _not_reconciled(mismatched)} if mismatched else {}),
                "dagster/row_count": lake.engine.row_count(path),
                "table_path": MetadataValue.path(path),
            }
        )

    return _ods


ods_assets = [build_ods_asset(spec) for spec in SOURCES]
