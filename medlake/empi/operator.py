"""The EMPI as a workflow operator (``kind: empi``): patient frame in, record → master assignments out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from medlake.empi.errors import FieldMapError
from medlake.empi.field_map import FieldMap
from medlake.empi.model import ModelSettings
from medlake.lake.locks import table_lock
from medlake.operators.base import OperatorContext, OperatorResult, StepStatus

if TYPE_CHECKING:  # Splink and pypinyin load when the index is built
    from medlake.empi.index import MasterPatientIndex

__all__ = ["DWD_PATIENT_FIELDS", "EmpiOperator"]

# The DWD patient table (medlake.sources "patient" + institution_code); record_id is built by the operator.
DWD_PATIENT_FIELDS = FieldMap(
    record_id="record_id", name="name", id_number="id_number", birth_date="birth_date", sex="sex_code",
    phone="phone", address="address", region="region_code", source="institution_code", updated_at="updated_at",
)
_KEYS = {"field_map", "link_threshold", "review_threshold", "store", "source_priority", "u_pairs", "em_pairs"}


def _field_map(value: Any) -> FieldMap:
    if value is None:
        return DWD_PATIENT_FIELDS
    if isinstance(value, str):
        return FieldMap.parse(value)
    if isinstance(value, Mapping):
        return FieldMap.from_mapping(value)
    raise FieldMapError(f"empi operator: field_map must be a mapping or 'field=column,…' text, got {type(value)}")


class EmpiOperator:
    """Config (YAML mapping): ``field_map``, ``link_threshold`` (0.95), ``review_threshold`` (0.5),
    ``store`` (folder below settings.lake, default ``dwd``), ``source_priority`` {source: rank},
    ``u_pairs``, ``em_pairs``."""

    kind = "empi"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise FieldMapError(
                f"empi operator: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}"
            )
        self.field_map = _field_map(config.get("field_map"))
        self.store = str(config.get("store", "dwd"))
        self.link_threshold = float(config.get("link_threshold", 0.95))
        self.review_threshold = float(config.get("review_threshold", 0.5))
        self.source_priority = {str(k): int(v) for k, v in dict(config.get("source_priority") or {}).items()}
        defaults = ModelSettings()
        self.model_settings = ModelSettings(
            u_pairs=float(config.get("u_pairs", defaults.u_pairs)),
            em_pairs=float(config.get("em_pairs", defaults.em_pairs)),
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EmpiOperator:
        """Built from a workflow step's YAML mapping (the workflow registry's convention)."""
        return cls(config)

    def index(self, ctx: OperatorContext) -> MasterPatientIndex:
        from medlake.empi.index import MasterPatientIndex

        return MasterPatientIndex(
            ctx.settings.lake / self.store,
            link_threshold=self.link_threshold,
            review_threshold=self.review_threshold,
            source_priority=self.source_priority,
            model_settings=self.model_settings,
            engine=ctx.engine,
        )

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult:
        # The index logic is polars in the driver: a Spark frame is collected (through Arrow) first; Splink then
        # runs on the engine's backend (DuckDB in process, or the SparkSession).
        records = pl.DataFrame(pl.from_arrow(ctx.engine.to_arrow(frame)))
        if "record_id" not in records.columns and {"institution_code", "patient_id"} <= set(records.columns):
            records = records.with_columns(record_id=pl.col("institution_code") + ":" + pl.col("patient_id"))
        if "record_id" in records.columns:  # master IDs must not depend on the order the engine read the rows in
            records = records.sort("record_id")
        with table_lock(ctx.settings, f"{self.store}/master_patient_index"):  # read index → link → write
            result = self.index(ctx).link(records, self.field_map, batch_id=ctx.run_id or None)
        if ctx.log is not None:
            ctx.log.info(f"empi {ctx.table}: {result.metadata()}")
        return OperatorResult(
            frame=nw.from_native(result.assignments.lazy()),
            rows_in=result.records_in,
            rows_out=result.assignments.height,
            status=StepStatus.WARN if result.review_pairs else StepStatus.OK,
            metrics=result.metadata(),
        )
