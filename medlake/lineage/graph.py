"""The lineage store: OpenLineage events plus standards bindings, checks and metrics, as one directed graph.

Nodes (``kind``): dataset, column, job, check, metric, data_element, value_domain, mapping_table.
Edges point downstream (from what is depended on to what depends on it):

=============  ==========================  ===============================================
edge kind      from → to                    source
=============  ==========================  ===============================================
reads          dataset → job               event inputs
writes         job → dataset               event outputs
has_column     dataset → column            schema / column-lineage facets
derives        column → column             column-lineage facet (attrs: job, transformation)
indirect       column → dataset            dataset-level (INDIRECT) column lineage
binds          data_element → column       standards bindings
uses_domain    value_domain → data_element standards elements
maps           mapping_table → column      mapping-table targets
checks         column/dataset → check      data-quality assertions, generated check files
measures       column → metric             metric specs
=============  ==========================  ===============================================

Persisted as networkx node-link JSON under ``$MEDLAKE_HOME/work/lineage/graph.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlake.config import LakePath, Settings, lake_path, settings
from medlake.layers import Layer
from medlake.lineage.errors import LineageError
from medlake.lineage.events import JOB_NAMESPACE, dataset_identity

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "CheckSpec",
    "EdgeKind",
    "LineageGraph",
    "MetricInputs",
    "NodeKind",
    "column_id",
    "dataset_id",
    "graph_path",
    "job_id",
]


class NodeKind(StrEnum):
    DATASET = "dataset"
    COLUMN = "column"
    JOB = "job"
    CHECK = "check"
    METRIC = "metric"
    DATA_ELEMENT = "data_element"
    VALUE_DOMAIN = "value_domain"
    MAPPING_TABLE = "mapping_table"


class EdgeKind(StrEnum):
    READS = "reads"
    WRITES = "writes"
    HAS_COLUMN = "has_column"
    DERIVES = "derives"
    INDIRECT = "indirect"
    BINDS = "binds"
    USES_DOMAIN = "uses_domain"
    MAPS = "maps"
    CHECKS = "checks"
    MEASURES = "measures"


_LAYER_FOLDERS = {layer.value for layer in Layer} | {"quality"}


@dataclass(frozen=True)
class CheckSpec:
    """One quality rule: its id, the table it runs on and the columns it reads."""

    id: str
    table: str  # "dwd.patient" or a Delta location
    columns: tuple[str, ...] = ()
    source: str = ""  # file the rule came from


@dataclass(frozen=True)
class MetricInputs:
    """An indicator and the columns it reads (measures, filters and group-by keys alike)."""

    name: str
    inputs: tuple[tuple[str, str], ...]  # (table or location, column)
    description: str = ""


def graph_path(config: Settings | None = None) -> Path:
    return (config or settings()).work / "lineage" / "graph.json"


def dataset_id(namespace: str, name: str) -> str:
    return f"dataset:{namespace}:{name}"


def column_id(namespace: str, name: str, column: str) -> str:
    return f"column:{namespace}:{name}#{column}"


def job_id(name: str, namespace: str = JOB_NAMESPACE) -> str:
    return f"job:{namespace}/{name}"


def _table_label(name: str) -> tuple[str, str]:
    """(``layer.table`` label, layer) of a dataset name such as ``/home/x/lake/dwd/patient``."""
    parts = Path(name).parts
    if len(parts) >= 2 and parts[-2] in _LAYER_FOLDERS:
        return f"{parts[-2]}.{parts[-1]}", parts[-2]
    return name, ""


class LineageGraph:
    """A queryable, persistable lineage graph. ``lake`` resolves ``dwd.patient``-style names to locations."""

    def __init__(self, lake: LakePath | str | None = None, graph: nx.DiGraph | None = None) -> None:
        import networkx as nx  # loaded with the first graph, not with the module

        self.lake: LakePath = lake_path(lake) if lake is not None else settings().lake
        self.g: nx.DiGraph = graph if graph is not None else nx.DiGraph()

    # ---- naming -------------------------------------------------------------------------------------------------
    def location(self, table: str) -> str:
        """``dwd.patient`` → the Delta location under the lake; a path or URI is returned as is."""
        if "/" in table or "://" in table:
            return table
        layer, _, name = table.partition(".")
        if not name:  # bare DWD table name, as standards bindings give it
            layer, name = Layer.DWD.value, layer
        return str(self.lake / layer / name)

    def _dataset(self, namespace: str, name: str) -> str:
        node = dataset_id(namespace, name)
        if node not in self.g:
            label, layer = _table_label(name)
            kind = NodeKind.METRIC if layer == Layer.METRIC.value else NodeKind.DATASET
            self.g.add_node(node, kind=kind.value, label=label, layer=layer, namespace=namespace, name=name)
        return node

    def _column(self, namespace: str, name: str, column: str) -> str:
        table = self._dataset(namespace, name)
        node = column_id(namespace, name, column)
        if node not in self.g:
            label = f"{self.g.nodes[table]['label']}.{column}"
            self.g.add_node(node, kind=NodeKind.COLUMN.value, label=label, dataset=table, column=column)
            self.g.add_edge(table, node, kind=EdgeKind.HAS_COLUMN.value)
        return node

    def table_node(self, table: str) -> str:
        return self._dataset(*dataset_identity(self.location(table)))

    def column_node(self, table: str, column: str) -> str:
        return self._column(*dataset_identity(self.location(table)), column)

    # ---- OpenLineage events ---------------------------------------------------------------------------------------
    def add_event(self, event: Mapping[str, Any]) -> None:
        """Fold one RunEvent (as JSON) into the graph."""
        job = event.get("job") or {}
        if not job.get("name"):
            return
        jnode = job_id(job["name"], job.get("namespace", JOB_NAMESPACE))
        job_type = (job.get("facets") or {}).get("jobType") or {}
        attrs = self.g.nodes[jnode] if jnode in self.g else {}
        self.g.add_node(
            jnode,
            kind=NodeKind.JOB.value,
            label=job["name"],
            integration=job_type.get("integration", attrs.get("integration", "")),
            job_type=job_type.get("jobType", attrs.get("job_type", "")),
            last_state=event.get("eventType", ""),
            last_event_time=event.get("eventTime", ""),
            run_id=(event.get("run") or {}).get("runId", ""),
        )
        for ds in event.get("inputs") or []:
            node = self._dataset(ds["namespace"], ds["name"])
            self.g.add_edge(node, jnode, kind=EdgeKind.READS.value)
            self._schema(ds)
            self._assertions(ds)
        for ds in event.get("outputs") or []:
            node = self._dataset(ds["namespace"], ds["name"])
            self.g.add_edge(jnode, node, kind=EdgeKind.WRITES.value)
            self._schema(ds)
            self._column_lineage(ds, jnode)
            stats = (ds.get("outputFacets") or {}).get("outputStatistics") or {}
            if stats.get("rowCount") is not None:
                self.g.nodes[node]["rows"] = stats["rowCount"]

    def _schema(self, ds: Mapping[str, Any]) -> None:
        for f in ((ds.get("facets") or {}).get("schema") or {}).get("fields") or []:
            node = self._column(ds["namespace"], ds["name"], f["name"])
            self.g.nodes[node]["type"] = f.get("type", "")

    def _column_lineage(self, ds: Mapping[str, Any], jnode: str) -> None:
        facet = (ds.get("facets") or {}).get("columnLineage") or {}
        for out_col, spec in (facet.get("fields") or {}).items():
            target = self._column(ds["namespace"], ds["name"], out_col)
            for inp in spec.get("inputFields") or []:
                source = self._column(inp["namespace"], inp["name"], inp["field"])
                subtypes = sorted({t.get("subtype") or t.get("type", "") for t in inp.get("transformations") or []})
                self.g.add_edge(
                    source, target, kind=EdgeKind.DERIVES.value, job=jnode, transformation=",".join(subtypes)
                )
        output = self._dataset(ds["namespace"], ds["name"])
        for inp in facet.get("dataset") or []:
            source = self._column(inp["namespace"], inp["name"], inp["field"])
            self.g.add_edge(source, output, kind=EdgeKind.INDIRECT.value, job=jnode)

    def _assertions(self, ds: Mapping[str, Any]) -> None:
        facet = (ds.get("inputFacets") or {}).get("dataQualityAssertions") or {}
        for assertion in facet.get("assertions") or []:
            check = self.add_check(
                CheckSpec(
                    id=assertion["assertion"],
                    table=ds["name"] if ds["namespace"] == "file" else f"{ds['namespace']}/{ds['name']}",
                    columns=(assertion["column"],) if assertion.get("column") else (),
                )
            )
            self.g.nodes[check]["last_outcome"] = "passed" if assertion.get("success") else "failed"

    def add_events_file(self, path: Path) -> int:
        """Fold every event of a JSON-lines file; return how many were read."""
        count = 0
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    self.add_event(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise LineageError(f"{path}:{line_no}: not a readable OpenLineage event ({exc})") from exc
                count += 1
        return count

    # ---- standards, checks, metrics ------------------------------------------------------------------------------
    def add_binding(self, table: str, column: str, element_id: str, value_domain: str | None = None) -> None:
        """A DWD column carries a data element (whose values come from a value domain)."""
        element = f"data_element:{element_id}"
        self.g.add_node(element, kind=NodeKind.DATA_ELEMENT.value, label=element_id)
        self.g.add_edge(element, self.column_node(table, column), kind=EdgeKind.BINDS.value)
        if value_domain:
            domain = f"value_domain:{value_domain}"
            self.g.add_node(domain, kind=NodeKind.VALUE_DOMAIN.value, label=value_domain)
            self.g.add_edge(domain, element, kind=EdgeKind.USES_DOMAIN.value)

    def add_mapping_table(self, mapping: str, targets: Iterable[tuple[str, str]]) -> str:
        """A code-mapping table (``institution/category/version``) feeding the given (table, column)s."""
        node = f"mapping_table:{mapping}"
        self.g.add_node(node, kind=NodeKind.MAPPING_TABLE.value, label=mapping)
        for table, column in targets:
            self.g.add_edge(node, self.column_node(table, column), kind=EdgeKind.MAPS.value)
        return node

    def add_check(self, spec: CheckSpec) -> str:
        node = f"check:{spec.id}"
        self.g.add_node(node, kind=NodeKind.CHECK.value, label=spec.id, source=spec.source)
        table = self.table_node(spec.table)
        self.g.nodes[node]["dataset"] = table
        if spec.columns:
            for column in spec.columns:
                self.g.add_edge(self.column_node(spec.table, column), node, kind=EdgeKind.CHECKS.value)
        else:
            self.g.add_edge(table, node, kind=EdgeKind.CHECKS.value)
        return node

    def add_metric(self, spec: MetricInputs) -> str:
        node = f"metric:{spec.name}"
        self.g.add_node(node, kind=NodeKind.METRIC.value, label=spec.name, description=spec.description)
        for table, column in spec.inputs:
            self.g.add_edge(self.column_node(table, column), node, kind=EdgeKind.MEASURES.value)
        return node

    # ---- queries ---------------------------------------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A node id from a node id, a label (``dwd.patient``, ``dwd.patient.sex_code``, ``dwd/patient``) or a
        location."""
        if ref in self.g:
            return ref
        matches = [n for n, a in self.g.nodes(data=True) if ref in (a.get("label"), a.get("name"))]
        if not matches and "/" in ref and not ref.startswith("/"):
            matches = [n for n in (job_id(ref),) if n in self.g]
        if not matches:
            for candidate in (dataset_id(*dataset_identity(ref)),):
                if candidate in self.g:
                    matches = [candidate]
        if len(matches) != 1:
            found = "no node" if not matches else f"{len(matches)} nodes ({', '.join(sorted(matches)[:5])})"
            raise LineageError(f"lineage graph: {ref!r} matches {found}")
        return matches[0]

    def label(self, node: str) -> str:
        return str(self.g.nodes[node].get("label", node))

    def kind(self, node: str) -> str:
        return str(self.g.nodes[node].get("kind", ""))

    def _walk(self, start: str, forward: bool, max_hops: int | None) -> dict[str, int]:
        import networkx as nx

        graph = self.g if forward else self.g.reverse(copy=False)
        lengths = nx.single_source_shortest_path_length(graph, start, cutoff=max_hops)
        return {n: d for n, d in lengths.items() if n != start}

    def downstream(self, ref: str, max_hops: int | None = None) -> dict[str, int]:
        """Every node reachable downstream of ``ref`` with its hop distance."""
        return self._walk(self.resolve(ref), True, max_hops)

    def upstream(self, ref: str, max_hops: int | None = None) -> dict[str, int]:
        return self._walk(self.resolve(ref), False, max_hops)

    def columns(self, ref: str) -> list[str]:
        """Column names of a dataset."""
        node = self.resolve(ref)
        return sorted(
            self.g.nodes[c]["column"]
            for c in self.g.successors(node)
            if self.g.edges[node, c]["kind"] == EdgeKind.HAS_COLUMN.value
        )

    def jobs(self, ref: str) -> dict[str, list[str]]:
        """Jobs reading and writing a dataset."""
        node = self.resolve(ref)
        return {
            "reads": sorted(self.label(j) for j in self.g.successors(node) if self.kind(j) == NodeKind.JOB.value),
            "writes": sorted(self.label(j) for j in self.g.predecessors(node) if self.kind(j) == NodeKind.JOB.value),
        }

    def nodes_of(self, kind: NodeKind | str) -> list[str]:
        return sorted(n for n, a in self.g.nodes(data=True) if a.get("kind") == str(kind))

    # ---- persistence -----------------------------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        import networkx as nx

        target = path or graph_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {"lake": str(self.lake), "graph": nx.node_link_data(self.g, edges="edges")}
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: Path | None = None) -> LineageGraph:
        import networkx as nx

        source = path or graph_path()
        try:
            payload = json.loads(source.read_text(encoding="utf-8"))
            graph = nx.node_link_graph(payload["graph"], directed=True, multigraph=False, edges="edges")
        except FileNotFoundError:
            raise LineageError(f"{source}: no lineage graph yet; run `medlake lineage build`") from None
        except (json.JSONDecodeError, KeyError) as exc:
            raise LineageError(f"{source}: not a lineage graph ({exc})") from exc
        return cls(lake=payload.get("lake") or settings().lake, graph=graph)
