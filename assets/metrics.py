"""Metric assets: one per MetricSpec, reading a theme Delta table and writing the indicator table."""


from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset

from medlake.layers import Layer
from medlake.metrics import METRICS, MetricSpec
from medlake.resources import LakeResource

__all__ = ["build_metric_asset", "metric_assets"]


def build_metric_asset(spec: MetricSpec) -> AssetsDefinition:
    @asset(
        name=spec.name,
        key_prefix=Layer.METRIC.key_prefix,
        group_name=Layer.METRIC.group,
        kinds={"delta", "python"},
        deps=[AssetKey([*Layer.THEME.key_prefix, spec.source])],
        description=f"{spec.label}: {spec.description}",
        metadata={"medlake/layer": Layer.METRIC.value, "medlake/grain": ", ".join(spec.grain)},
    )
    def _metric(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        from medlake.lineage.derivation import metric_column_lineage
        from medlake.lineage.materialization import materialization_lineage

        source = str(lake.settings.table_path(Layer.THEME.value, spec.source))
        target = str(lake.settings.table_path(Layer.METRIC.value, spec.name))
        with materialization_lineage(context, lake.settings, [source], [target],
                                     lambda: metric_column_lineage(spec, source)):
            result = lake.engine.overwrite(spec.compute(lake.engine.read(source)), target)
        return MaterializeResult(
            metadata={"dagster/row_count": result.rows_written, "table_path": MetadataValue.path(target)}
        )

    return _metric


metric_assets = [build_metric_asset(spec) for spec in METRICS]
