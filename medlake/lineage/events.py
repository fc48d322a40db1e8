"""OpenLineage run events for medlake materializations, built with openlineage-python's own classes.

Naming follows the OpenLineage naming spec: jobs live in namespace ``medlake`` and are named by their asset-key path
(``dwd/patient``); a Delta table is a dataset named by its location — namespace ``file`` and the absolute path for a
local lake, namespace ``<scheme>://<bucket>`` and the key for object stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    column_lineage_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.uuid import generate_new_uuid

from medlake.lineage.errors import LineageError

__all__ = [
    "DIRECT_SUBTYPES",
    "INDIRECT_SUBTYPES",
    "JOB_NAMESPACE",
    "PRODUCER",
    "ColumnLineage",
    "ColumnSource",
    "column_lineage_facet",
    "dataset_identity",
    "error_facet",
    "input_dataset",
    "job_name",
    "job_type_facet",
    "new_run_id",
    "output_dataset",
    "output_statistics_facet",
    "run_event",
    "schema_facet",
]

JOB_NAMESPACE = "medlake"
PRODUCER = "https://github.com/medlake/medlake/tree/0.1.0/medlake/lineage"
DIRECT_SUBTYPES = frozenset({"IDENTITY", "TRANSFORMATION", "AGGREGATION"})
INDIRECT_SUBTYPES = frozenset({"FILTER", "JOIN", "GROUP_BY", "SORT", "WINDOW", "CONDITIONAL"})

# (input dataset location, input column, transformation) — transformation is a subtype such as "IDENTITY",
# optionally followed by ": description" ("TRANSFORMATION: normalize_id_number"), or an OpenLineage Transformation.
ColumnSource = tuple[str | Path, str, "str | column_lineage_dataset.Transformation"]
ColumnLineage = Mapping[str, Sequence[ColumnSource]]


def job_name(asset_key: str | Sequence[str]) -> str:
    """``["dwd", "patient"]`` → ``dwd/patient`` (Dagster's user string for an asset key)."""
    return asset_key if isinstance(asset_key, str) else "/".join(asset_key)


def dataset_identity(location: str | Path) -> tuple[str, str]:
    """(namespace, name) of a Delta table location per the OpenLineage naming spec."""
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # plain path, file:// URI or a Windows drive
        path = parsed.path if parsed.scheme == "file" else text
        return "file", str(Path(path).expanduser().resolve())
    if not parsed.netloc:
        raise LineageError(f"dataset location {text!r}: URI has no bucket/authority")
    return f"{parsed.scheme}://{parsed.netloc}", parsed.path.lstrip("/")


def new_run_id() -> str:
    """A UUIDv7 run id, as the OpenLineage client generates them."""
    return str(generate_new_uuid())


def _schema_pairs(schema: Any) -> list[tuple[str, str]]:
    if isinstance(schema, Mapping):
        return [(str(k), str(v)) for k, v in schema.items()]
    names = getattr(schema, "names", None)
    if names is not None and hasattr(schema, "field"):  # pyarrow.Schema
        return [(f.name, str(f.type)) for f in schema]
    if hasattr(schema, "items"):  # polars.Schema / narwhals schema
        return [(str(k), str(v)) for k, v in schema.items()]
    raise LineageError(f"cannot read a schema from {type(schema).__name__}; pass a pyarrow/polars schema or a dict")


def schema_facet(schema: Any) -> schema_dataset.SchemaDatasetFacet:
    """SchemaDatasetFacet from a pyarrow schema, a polars/narwhals schema or a {column: type} mapping."""
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in _schema_pairs(schema)]
    )


def _transformation(
    spec: str | column_lineage_dataset.Transformation, where: str
) -> column_lineage_dataset.Transformation:
    if isinstance(spec, column_lineage_dataset.Transformation):
        return spec
    subtype, _, description = (part.strip() for part in str(spec).partition(":"))
    subtype = subtype.upper()
    if subtype in DIRECT_SUBTYPES:
        kind = "DIRECT"
    elif subtype in INDIRECT_SUBTYPES:
        kind = "INDIRECT"
    else:
        raise LineageError(
            f"column lineage of {where}: transformation {spec!r}: expected one of "
            f"{', '.join(sorted(DIRECT_SUBTYPES | INDIRECT_SUBTYPES))} (optionally ': description')"
        )
    return column_lineage_dataset.Transformation(type=kind, subtype=subtype, description=description or None)


def column_lineage_facet(mapping: ColumnLineage) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """ColumnLineageDatasetFacet from ``{out_col: [(in_location, in_col, transformation), ...]}``."""
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for out_col, sources in mapping.items():
        inputs = []
        for entry in sources:
            if len(entry) != 3:
                raise LineageError(f"column lineage of {out_col!r}: expected (dataset, column, transformation)")
            location, column, transformation = entry
            namespace, name = dataset_identity(location)
            inputs.append(
                column_lineage_dataset.InputField(
                    namespace=namespace, name=name, field=column,
                    transformations=[_transformation(transformation, f"{out_col} <- {column}")],
                )
            )
        fields[out_col] = column_lineage_dataset.Fields(inputFields=inputs)
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)


def output_statistics_facet(
    rows: int | None = None, size: int | None = None, files: int | None = None
) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet:
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=rows, size=size, fileCount=files
    )


def job_type_facet(integration: str = "DAGSTER", job_type: str = "ASSET") -> job_type_job.JobTypeJobFacet:
    """``integration``/``jobType`` tell the lineage store a dbt model (DBT/MODEL) from a Python asset."""
    return job_type_job.JobTypeJobFacet(processingType="BATCH", integration=integration, jobType=job_type)


def error_facet(error: BaseException, stack_trace: str | None = None) -> error_message_run.ErrorMessageRunFacet:
    return error_message_run.ErrorMessageRunFacet(
        message=f"{type(error).__name__}: {error}", programmingLanguage="PYTHON", stackTrace=stack_trace
    )


def input_dataset(
    location: str | Path, *, schema: Any = None, facets: Mapping[str, DatasetFacet] | None = None
) -> InputDataset:
    namespace, name = dataset_identity(location)
    all_facets: dict[str, DatasetFacet] = dict(facets or {})
    if schema is not None:
        all_facets["schema"] = schema_facet(schema)
    return InputDataset(namespace=namespace, name=name, facets=all_facets)


def output_dataset(
    location: str | Path,
    *,
    schema: Any = None,
    column_lineage: ColumnLineage | None = None,
    facets: Mapping[str, DatasetFacet] | None = None,
    output_facets: Mapping[str, OutputDatasetFacet] | None = None,
) -> OutputDataset:
    namespace, name = dataset_identity(location)
    all_facets: dict[str, DatasetFacet] = dict(facets or {})
    if schema is not None:
        all_facets["schema"] = schema_facet(schema)
    if column_lineage:
        all_facets["columnLineage"] = column_lineage_facet(column_lineage)
    return OutputDataset(namespace=namespace, name=name, facets=all_facets, outputFacets=dict(output_facets or {}))


def run_event(
    state: RunState | str,
    job: str | Sequence[str],
    run_id: str,
    *,
    inputs: Iterable[InputDataset] = (),
    outputs: Iterable[OutputDataset] = (),
    job_facets: Mapping[str, JobFacet] | None = None,
    run_facets: Mapping[str, RunFacet] | None = None,
    event_time: datetime | None = None,
) -> RunEvent:
    """One RunEvent (START, RUNNING, COMPLETE, FAIL, ABORT) for a medlake job."""
    when = (event_time or datetime.now(UTC)).isoformat()
    return RunEvent(
        eventType=RunState(state) if isinstance(state, str) else state,
        eventTime=when,
        run=Run(runId=run_id, facets=dict(run_facets or {})),
        job=Job(namespace=JOB_NAMESPACE, name=job_name(job), facets=dict(job_facets or {})),
        inputs=list(inputs),
        outputs=list(outputs),
        producer=PRODUCER,
    )
