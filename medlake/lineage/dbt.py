"""Column lineage of dbt models from the compiled manifest (openlineage-sql), emitted after a dbt build.

The lead passes ``resolve(relation) -> Delta location`` (how dbt relations map onto lake tables) and, optionally,
``asset_key(relation)`` (the asset key a model materializes; default ``theme/<model name>``). Column origins that
openlineage-sql leaves on a CTE (``select * from source`` staging style) are attributed to the upstream relation
whose known columns (manifest docs or its Delta schema) contain the column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import openlineage_sql
from openlineage.client.event_v2 import RunState
from openlineage.client.facet_v2 import RunFacet, parent_run, sql_job

from medlake.layers import Layer
from medlake.lineage.delta_log import delta_snapshot
from medlake.lineage.emitter import LineageEmitter
from medlake.lineage.errors import LineageError
from medlake.lineage.events import (
    JOB_NAMESPACE,
    ColumnSource,
    error_facet,
    input_dataset,
    job_name,
    job_type_facet,
    new_run_id,
    output_dataset,
    run_event,
)

__all__ = ["DbtModelLineage", "DbtRelation", "dbt_model_lineage", "emit_dbt_run"]

_MODEL_TYPES = ("model", "snapshot", "seed")


@dataclass(frozen=True)
class DbtRelation:
    unique_id: str
    resource_type: str  # model, source, seed, snapshot
    database: str
    schema: str
    name: str  # alias / identifier: the relation's name in the warehouse
    columns: tuple[str, ...] = ()  # documented columns from the manifest


@dataclass
class DbtModelLineage:
    relation: DbtRelation
    job: str
    output: str
    inputs: list[str]
    column_lineage: dict[str, list[ColumnSource]] = field(default_factory=dict)
    sql: str = ""
    unresolved: list[str] = field(default_factory=list)  # "out_col <- origin.col" the parser could not place


def _relation(node: Mapping[str, Any]) -> DbtRelation:
    return DbtRelation(
        unique_id=node["unique_id"],
        resource_type=node.get("resource_type", ""),
        database=str(node.get("database") or ""),
        schema=str(node.get("schema") or ""),
        name=str(node.get("alias") or node.get("identifier") or node["name"]),
        columns=tuple(node.get("columns") or ()),
    )


def _keys(database: str | None, schema: str | None, name: str) -> list[tuple[str, ...]]:
    parts = [p.strip('"`').lower() for p in (database or "", schema or "", name)]
    return [tuple(parts), tuple(parts[1:]), (parts[2],)]


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LineageError(f"{path}: cannot read dbt artifact ({exc})") from exc


class _Upstreams:
    """The relations a model depends on, findable by any qualification and by the columns they hold."""

    def __init__(self, relations: Iterable[DbtRelation], resolve: Callable[[DbtRelation], str | None]) -> None:
        self.by_key: dict[tuple[str, ...], DbtRelation] = {}
        self.location: dict[str, str] = {}
        self.columns: dict[str, set[str]] = {}
        for rel in relations:
            where = resolve(rel)
            if not where:
                continue
            self.location[rel.unique_id] = where
            for key in _keys(rel.database, rel.schema, rel.name):
                self.by_key.setdefault(key, rel)
            snapshot = delta_snapshot(where)
            known = set(rel.columns) | (set(snapshot.schema.names) if snapshot else set())
            self.columns[rel.unique_id] = {c.lower() for c in known}

    def find(self, origin: Any, column: str) -> str | None:
        if origin is not None:
            for key in _keys(origin.database, origin.schema, origin.name):
                if key in self.by_key:
                    return self.location[self.by_key[key].unique_id]
        holders = [uid for uid, cols in self.columns.items() if column.lower() in cols]
        if len(holders) == 1:
            return self.location[holders[0]]
        if len(self.location) == 1:
            return next(iter(self.location.values()))
        return None


def _landed_dependencies(node: Mapping[str, Any], nodes: Mapping[str, Any], seen: frozenset[str] = frozenset()
                         ) -> list[str]:
    """Direct dependencies, with each ephemeral model replaced by what it reads (it is inlined as a CTE)."""
    found: list[str] = []
    for dep in (node.get("depends_on") or {}).get("nodes", []):
        if dep not in nodes or dep in seen:
            continue
        if (nodes[dep].get("config") or {}).get("materialized") == "ephemeral":
            found += _landed_dependencies(nodes[dep], nodes, seen | {dep})
        else:
            found.append(dep)
    return list(dict.fromkeys(found))


def dbt_model_lineage(
    manifest_path: Path,
    resolve: Callable[[DbtRelation], str | None],
    *,
    asset_key: Callable[[DbtRelation], str | Sequence[str]] | None = None,
    dialect: str = "duckdb",
    only: Iterable[str] | None = None,
) -> list[DbtModelLineage]:
    """Column lineage of every model (or the ``only`` unique ids) in a compiled ``manifest.json``."""
    manifest = _load(manifest_path)
    nodes: dict[str, Any] = {**manifest.get("sources", {}), **manifest.get("nodes", {})}
    wanted = set(only) if only is not None else None
    key_of = asset_key or (lambda rel: [Layer.THEME.value, rel.name])
    results = []
    for uid, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") not in _MODEL_TYPES or (wanted is not None and uid not in wanted):
            continue
        rel = _relation(node)
        output = resolve(rel)
        if not output:
            continue
        upstream = _Upstreams((_relation(nodes[d]) for d in _landed_dependencies(node, nodes)), resolve)
        model = DbtModelLineage(rel, job_name(key_of(rel)), output, sorted(set(upstream.location.values())))
        sql = node.get("compiled_code") or node.get("compiled_sql") or ""
        model.sql = sql
        if sql:
            _add_columns(model, sql, dialect, upstream)
        results.append(model)
    return results


def _add_columns(model: DbtModelLineage, sql: str, dialect: str, upstream: _Upstreams) -> None:
    try:
        parsed = openlineage_sql.parse([sql], dialect=dialect)
    except Exception as exc:  # the SQL parser is best effort; lineage must not fail the build
        model.unresolved.append(f"parse error: {exc}")
        return
    description = f"dbt model {model.relation.name}"
    for item in parsed.column_lineage:
        out_col = item.descendant.name
        for source in item.lineage:
            where = upstream.find(source.origin, source.name)
            if where is None:
                model.unresolved.append(f"{out_col} <- {source.origin}.{source.name}")
                continue
            model.column_lineage.setdefault(out_col, []).append((where, source.name, f"TRANSFORMATION: {description}"))


def _timing(result: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    for step in result.get("timing") or []:
        if step.get("name") == "execute" and step.get("started_at"):
            started = datetime.fromisoformat(step["started_at"].replace("Z", "+00:00"))
            done = step.get("completed_at")
            return started, datetime.fromisoformat(done.replace("Z", "+00:00")) if done else None
    return None, None


def emit_dbt_run(
    manifest_path: Path,
    run_results_path: Path,
    resolve: Callable[[DbtRelation], str | None],
    *,
    asset_key: Callable[[DbtRelation], str | Sequence[str]] | None = None,
    emitter: LineageEmitter | None = None,
    parent: tuple[str, str] | None = None,
    dialect: str = "duckdb",
) -> int:
    """After ``dbt build``: one START + COMPLETE/FAIL per executed model, with SQL and column lineage.
    Returns the number of events emitted."""
    results = {r["unique_id"]: r for r in _load(run_results_path).get("results", [])}
    models = dbt_model_lineage(manifest_path, resolve, asset_key=asset_key, dialect=dialect, only=results)
    sender = emitter or LineageEmitter()
    parent_facets: dict[str, RunFacet] = {}
    if parent is not None:
        parent_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent[1]), job=parent_run.Job(namespace=JOB_NAMESPACE, name=parent[0])
        )
    emitted = 0
    for model in models:
        result = results[model.relation.unique_id]
        status = str(result.get("status", "")).lower()
        if status in ("skipped", ""):
            continue
        started, done = _timing(result)
        run_id = new_run_id()
        jf = {"jobType": job_type_facet("DBT", "MODEL"), "sql": sql_job.SQLJobFacet(query=model.sql)}
        inputs = [input_dataset(loc, schema=_schema(loc)) for loc in model.inputs]
        start_out = [output_dataset(model.output, column_lineage=model.column_lineage)]
        emitted += sender.emit(run_event(RunState.START, model.job, run_id, inputs=inputs, outputs=start_out,
                              job_facets=jf, run_facets=parent_facets, event_time=started))
        failed = status in ("error", "fail", "runtime error")
        final_facets = dict(parent_facets)
        if failed:
            final_facets["errorMessage"] = error_facet(LineageError(str(result.get("message") or status)))
        end_out = [output_dataset(model.output, schema=_schema(model.output), column_lineage=model.column_lineage)]
        final = RunState.FAIL if failed else RunState.COMPLETE
        emitted += sender.emit(run_event(final, model.job, run_id, inputs=inputs, outputs=end_out,
                                         job_facets=jf, run_facets=final_facets, event_time=done))
    return emitted


def _schema(location: str) -> Any:
    snapshot = delta_snapshot(location)
    return snapshot.schema if snapshot else None
