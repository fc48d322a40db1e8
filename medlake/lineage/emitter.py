"""Emit START then COMPLETE/FAIL around a materialization, through openlineage-python's own transports.

Transport, by the ecosystem's conventions:

* ``OPENLINEAGE_DISABLED=true`` → nothing is emitted;
* an OpenLineage config (``OPENLINEAGE_CONFIG``, ``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__TYPE``) → the
  client resolves it exactly as every OpenLineage integration does;
* ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_ENDPOINT``) → HTTP to a Marquez-compatible API, with the API key
  (``OPENLINEAGE_API_KEY``, a secret) given by the caller: Dagster code takes it from the ``lake`` resource, which
  binds it as an ``EnvVar``;
* otherwise → JSON lines appended to ``$MEDLAKE_HOME/work/lineage/events.jsonl``.

These variables are read by :mod:`medlake.config` (:class:`medlake.config.LineageSettings`).

Lineage is an observer: a failing transport logs a warning and never breaks the pipeline.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent, RunState
from openlineage.client.facet_v2 import JobFacet, OutputDatasetFacet, RunFacet, parent_run
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.noop import NoopConfig, NoopTransport
from openlineage.client.transport.transport import Transport

from medlake.config import Settings, settings
from medlake.lineage.delta_log import delta_snapshot
from medlake.lineage.events import (
    JOB_NAMESPACE,
    ColumnLineage,
    error_facet,
    input_dataset,
    job_type_facet,
    new_run_id,
    output_dataset,
    output_statistics_facet,
    run_event,
)

__all__ = ["LineageEmitter", "LineageRun", "emit_run", "events_path", "lineage_transport"]

log = logging.getLogger("medlake.lineage")

_HTTP_RETRY = {"total": 2, "backoff_factor": 0.2, "allowed_methods": ["POST"]}


def events_path(config: Settings | None = None) -> Path:
    """The default JSON-lines event log: ``$MEDLAKE_HOME/work/lineage/events.jsonl``."""
    return (config or settings()).work / "lineage" / "events.jsonl"


def _openlineage_configured(config: Settings) -> bool:
    return config.lineage.client_configured or Path.cwd().joinpath("openlineage.yml").is_file()


def lineage_transport(config: Settings | None = None, api_key: str = "") -> Transport | None:
    """The transport ``config.lineage`` chooses; None means "let OpenLineageClient read its own config".
    ``api_key`` authenticates the HTTP transport (a secret: never part of ``Settings``)."""
    config = config or settings()
    lineage = config.lineage
    if lineage.disabled:
        return NoopTransport(NoopConfig())
    if _openlineage_configured(config):
        return None
    if lineage.url:
        http: dict[str, Any] = {
            "url": lineage.url, "endpoint": lineage.endpoint, "timeout": lineage.timeout, "retry": _HTTP_RETRY,
        }
        if api_key:
            http["auth"] = {"type": "api_key", "apiKey": api_key}
        return HttpTransport(HttpConfig.from_dict(http))
    path = events_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


class LineageEmitter:
    """Sends events; swallows and logs transport failures (lineage must never fail a materialization)."""

    def __init__(
        self, client: OpenLineageClient | None = None, config: Settings | None = None, api_key: str = ""
    ) -> None:
        if client is None:
            transport = lineage_transport(config, api_key)
            client = OpenLineageClient(transport=transport) if transport else OpenLineageClient()
        self.client = client

    def emit(self, event: RunEvent) -> bool:
        try:
            self.client.emit(event)
        except Exception as exc:  # the pipeline goes on whatever the lineage backend does
            log.warning("OpenLineage %s event for job %s not delivered: %s", event.eventType.value, event.job.name, exc)
            return False
        return True


def _output_lineage(column_lineage: Mapping[str, Any] | None, outputs: Sequence[str]) -> dict[str, ColumnLineage]:
    """Accept ``{out_col: [...]}`` (the single output) or ``{output_location: {out_col: [...]}}``."""
    if not column_lineage:
        return {}
    if all(isinstance(v, Mapping) for v in column_lineage.values()):
        return {str(k): v for k, v in column_lineage.items()}
    if len(outputs) != 1:
        raise ValueError("column_lineage keyed by column needs exactly one output; key it by output location")
    return {outputs[0]: column_lineage}  # type: ignore[dict-item]


@dataclass
class LineageRun:
    """Handle yielded by :func:`emit_run`; lets the body add what it learns (schemas, row counts)."""

    job: str
    run_id: str
    inputs: list[str]
    outputs: list[str]
    column_lineage: dict[str, ColumnLineage] = field(default_factory=dict)
    output_schemas: dict[str, Any] = field(default_factory=dict)
    output_rows: dict[str, int] = field(default_factory=dict)

    def record_input(self, location: str | Path) -> None:
        """An input learnt while running (e.g. the delivered files a load picked up); sent with COMPLETE/FAIL."""
        key = str(location)
        if key not in self.inputs:
            self.inputs.append(key)

    def record_output(
        self,
        location: str | Path,
        *,
        schema: Any = None,
        rows: int | None = None,
        column_lineage: ColumnLineage | None = None,
    ) -> None:
        key = str(location)
        if key not in self.outputs:
            self.outputs.append(key)
        if schema is not None:
            self.output_schemas[key] = schema
        if rows is not None:
            self.output_rows[key] = rows
        if column_lineage:
            self.column_lineage[key] = column_lineage

    def _inputs(self) -> list[InputDataset]:
        datasets = []
        for location in self.inputs:
            snapshot = delta_snapshot(location)
            datasets.append(input_dataset(location, schema=snapshot.schema if snapshot else None))
        return datasets

    def _outputs(self, *, complete: bool) -> list[OutputDataset]:
        datasets = []
        for location in self.outputs:
            schema = self.output_schemas.get(location)
            rows = self.output_rows.get(location)
            extra: dict[str, OutputDatasetFacet] = {}
            if complete:
                snapshot = delta_snapshot(location)
                if snapshot is not None:
                    schema = schema if schema is not None else snapshot.schema
                    extra["outputStatistics"] = output_statistics_facet(
                        rows if rows is not None else snapshot.rows, snapshot.size_bytes, snapshot.files
                    )
                elif rows is not None:
                    extra["outputStatistics"] = output_statistics_facet(rows)
            datasets.append(
                output_dataset(
                    location, schema=schema, column_lineage=self.column_lineage.get(location), output_facets=extra
                )
            )
        return datasets


@contextmanager
def emit_run(
    job: str | Sequence[str],
    inputs: Iterable[str | Path] = (),
    outputs: Iterable[str | Path] = (),
    column_lineage: Mapping[str, Any] | None = None,
    *,
    integration: str = "DAGSTER",
    job_type: str = "ASSET",
    job_facets: Mapping[str, JobFacet] | None = None,
    run_facets: Mapping[str, RunFacet] | None = None,
    parent: tuple[str, str] | None = None,
    run_id: str | None = None,
    emitter: LineageEmitter | None = None,
) -> Iterator[LineageRun]:
    """Emit START, run the body, then COMPLETE (with schemas and row counts read from the Delta log) or FAIL.

    ``column_lineage`` is ``{out_col: [(in_location, in_col, transformation)]}`` for a single output, or keyed by
    output location. ``parent`` = (parent job name, parent run id), e.g. the Dagster job and run.
    Exceptions of the body are re-raised after the FAIL event.
    """
    sender = emitter or LineageEmitter()
    outs = [str(o) for o in outputs]
    run = LineageRun(
        job="/".join(job) if not isinstance(job, str) else job,
        run_id=run_id or new_run_id(),
        inputs=[str(i) for i in inputs],
        outputs=outs,
        column_lineage=_output_lineage(column_lineage, outs),
    )
    jf: dict[str, JobFacet] = {"jobType": job_type_facet(integration, job_type), **(job_facets or {})}
    rf: dict[str, RunFacet] = dict(run_facets or {})
    if parent is not None:
        rf["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent[1]), job=parent_run.Job(namespace=JOB_NAMESPACE, name=parent[0])
        )

    input_datasets = run._inputs()
    known_inputs = list(run.inputs)

    def send(state: RunState, *, complete: bool = False, extra_run: Mapping[str, RunFacet] | None = None) -> None:
        nonlocal input_datasets, known_inputs
        if run.inputs != known_inputs:  # inputs recorded by the body since START
            input_datasets, known_inputs = run._inputs(), list(run.inputs)
        sender.emit(
            run_event(
                state, run.job, run.run_id, inputs=input_datasets, outputs=run._outputs(complete=complete),
                job_facets=jf, run_facets={**rf, **(extra_run or {})},
            )
        )

    send(RunState.START)
    try:
        yield run
    except BaseException as exc:
        send(RunState.FAIL, extra_run={"errorMessage": error_facet(exc, traceback.format_exc())})
        raise
    send(RunState.COMPLETE, complete=True)
