"""Column lineage of medlake's own steps, derived from the specs that drive them (never hand-written per table).

* ODS: every source column is the same column of each delivered file (``IDENTITY``).
* DWD: ``medlake.sources`` says how each column is typed; standardized columns are ``TRANSFORMATION``\\s.
* metrics: a ``medlake.metrics.MetricSpec``'s grain, ``derived``, ``measures`` and ``filters``.
* workflows: the operator chain of a ``WorkflowSpec`` (``mask`` rewrites or drops columns, ``transcode`` adds the
  national code columns, ``quality`` only filters rows; an operator without a rule here ends column lineage).

Lineage maps are ``{output column: [(input location, input column, transformation)]}`` as ``emit_run`` takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from medlake.layers import Layer
from medlake.lineage.events import ColumnSource
from medlake.lineage.graph import MetricInputs
from medlake.metrics import MetricSpec
from medlake.sources import SourceTable

__all__ = [
    "DWD_STANDARDIZERS",
    "dwd_column_lineage",
    "metric_column_lineage",
    "metric_input_columns",
    "metric_lineage_spec",
    "ods_column_lineage",
    "workflow_column_lineage",
]

ColumnMap = dict[str, list[ColumnSource]]

# How DWD standardizes a text column beyond trimming (medlake.lake.dwd); typed columns are casts.
DWD_STANDARDIZERS: dict[str, str] = {
    "sex_code": "delivered sex codes mapped to GB/T 2261.1",
    "encounter_type": "delivered encounter types mapped to outpatient/emergency/inpatient",
    "id_number": "GB 11643 normalization (15→18 digit upgrade, upper-case X)",
}


def ods_column_lineage(spec: SourceTable, delivered: Iterable[str | Path]) -> ColumnMap:
    """ODS ``<table>``: each source column copied from each delivered file."""
    files = [str(f) for f in delivered]
    return {column: [(f, column, "IDENTITY") for f in files] for column in spec.column_names}


def _dwd_transformation(spec: SourceTable, column: str) -> str:
    dtype = spec.column(column).dtype
    if dtype != "string":
        return f"TRANSFORMATION: text cast to {dtype}"
    if column in DWD_STANDARDIZERS:
        return f"TRANSFORMATION: {DWD_STANDARDIZERS[column]}"
    return "IDENTITY: trimmed, blank as null"


def dwd_column_lineage(spec: SourceTable, ods_location: str | Path) -> ColumnMap:
    """DWD ``<table>`` from ODS ``<table>``: institution from ``_institution``, then each typed source column."""
    ods = str(ods_location)
    lineage: ColumnMap = {"institution_code": [(ods, "_institution", "IDENTITY")]}
    for column in spec.column_names:
        lineage[column] = [(ods, column, _dwd_transformation(spec, column))]
    lineage["_batch_id"] = [(ods, "_batch_id", "IDENTITY")]
    return lineage


def metric_input_columns(spec: MetricSpec) -> list[str]:
    """Every source column a metric reads: grain (or what it is derived from), measures and filters."""
    columns = [c for g in spec.grain for c in spec.derived.get(g, (g,))]
    columns += [c for sources in spec.measures.values() for c in sources]
    return list(dict.fromkeys([*columns, *spec.filters]))


def metric_column_lineage(spec: MetricSpec, source_location: str | Path) -> ColumnMap:
    """Grain columns from their source columns, measures as aggregations, and — as OpenLineage's indirect
    lineage — the group-by and filter columns on every output column."""
    source = str(source_location)
    indirect: list[ColumnSource] = [
        (source, c, "GROUP_BY") for g in spec.grain for c in spec.derived.get(g, (g,))
    ]
    indirect += [(source, c, "FILTER") for c in spec.filters]
    lineage: ColumnMap = {}
    for g in spec.grain:
        kind = "TRANSFORMATION" if g in spec.derived else "IDENTITY"
        lineage[g] = [(source, c, kind) for c in spec.derived.get(g, (g,))] + indirect
    for measure, columns in spec.measures.items():
        lineage[measure] = [(source, c, f"AGGREGATION: {spec.name}.{measure}") for c in columns] + indirect
    return lineage


def metric_lineage_spec(spec: MetricSpec) -> MetricInputs:
    """The lineage store's view of a metric: the theme columns it reads."""
    table = f"{Layer.THEME.value}.{spec.source}"
    return MetricInputs(
        name=spec.name, inputs=tuple((table, c) for c in metric_input_columns(spec)), description=spec.label
    )


# ---- workflows ---------------------------------------------------------------------------------------------------
# State while folding the steps: output column → [(source column, transformation)].
_State = dict[str, list[tuple[str, str]]]


def _retransform(sources: list[tuple[str, str]], description: str) -> list[tuple[str, str]]:
    return [(column, f"TRANSFORMATION: {description}") for column, _ in sources]


def _mask(config: Mapping[str, Any], state: _State) -> _State:
    from medlake.masking.operator import MaskConfig

    mask = MaskConfig.from_mapping(config)
    rules = {r.column: r.method for r in mask.rules}
    folded: _State = {}
    for column, sources in state.items():
        method = rules.get(column, mask.default)
        if method == "drop":
            continue
        folded[column] = sources if method == "keep" else _retransform(sources, f"mask {method}")
    return folded


def _transcode(config: Mapping[str, Any], state: _State) -> _State:
    from medlake.transcode.operator import TranscodeConfig

    cfg = TranscodeConfig.from_mapping(config)
    code = _retransform(state.get(cfg.column, []), f"transcode {cfg.column} to national code")
    keys = [(c, "JOIN") for k in (cfg.institution_column, cfg.category_column) if k for c, _ in state.get(k, [])]
    folded = dict(state)
    for out in (cfg.out_column, cfg.out_name_column):
        if out:
            folded[out] = code + keys
    return folded


def _rows_only(config: Mapping[str, Any], state: _State) -> _State:
    return state


def _deidentify(config: Mapping[str, Any], state: _State) -> _State:
    """Quasi-identifiers generalised (k-anonymity); records suppressed, other columns as they were."""
    generalised = set(config.get("quasi_identifiers") or {})
    return {column: _retransform(sources, "deidentify: generalised to k-anonymity") if column in generalised
            else sources for column, sources in state.items()}


_STEP_RULES: dict[str, Callable[[Mapping[str, Any], _State], _State]] = {
    "mask": _mask,
    "transcode": _transcode,
    "quality": _rows_only,
    "deidentify": _deidentify,
}


def workflow_column_lineage(spec: Any, source_location: str | Path, source_columns: Iterable[str]) -> ColumnMap:
    """Target columns of a ``WorkflowSpec`` traced through its steps to the source table's columns. After a step
    whose operator has no rule (e.g. ``empi``, which returns a new frame) nothing more is claimed."""
    state: _State = {c: [(c, "IDENTITY")] for c in source_columns}
    for step in spec.steps:
        rule = _STEP_RULES.get(step.operator)
        if rule is None:
            return {}
        state = rule(step.config, state)
    source = str(source_location)
    return {out: [(source, c, t) for c, t in sources] for out, sources in state.items() if sources}
