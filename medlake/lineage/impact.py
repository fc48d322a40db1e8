"""What a standard change touches: every column, table, dbt model, check and metric, with hop distance and path.

Propagation follows only dependencies that carry values — domain → element → bound column → derived columns →
checks and metrics. Tables, jobs and dbt models are listed as the containers/producers of affected columns but
are not themselves expanded, so a change to ``sex_code`` never drags in the other columns of the same tables.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from medlake.lineage.graph import EdgeKind, LineageGraph, NodeKind
from medlake.lineage.inventory import mapping_key

__all__ = ["ImpactItem", "ImpactReport", "StandardChange", "changes_from_diff", "impact"]

ChangeKind = Literal["data_element", "value_domain", "mapping_table"]
_PROPAGATING = {
    EdgeKind.USES_DOMAIN.value,
    EdgeKind.BINDS.value,
    EdgeKind.MAPS.value,
    EdgeKind.DERIVES.value,
    EdgeKind.CHECKS.value,
    EdgeKind.MEASURES.value,
}
_ORDER = ["value_domain", "mapping_table", "data_element", "column", "table", "job", "dbt_model", "check", "metric"]


@dataclass(frozen=True)
class StandardChange:
    kind: ChangeKind
    id: str  # element id, value-domain id, or "institution/category"

    @property
    def node(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class ImpactItem:
    kind: str  # column, table, job, dbt_model, check, metric (and the seed's own kind at hop 0)
    name: str
    hops: int
    path: tuple[str, ...]


@dataclass
class ImpactReport:
    changes: list[StandardChange]
    items: list[ImpactItem] = field(default_factory=list)
    unknown: list[StandardChange] = field(default_factory=list)  # not referenced anywhere in the graph
    preview: bool = False

    def of_kind(self, kind: str) -> list[str]:
        return [i.name for i in self.items if i.kind == kind]

    def asset_keys(self) -> list[list[str]]:
        """Asset keys (``[layer, table]``) of affected tables and metric tables, for a re-materialization."""
        keys = {tuple(i.name.split(".", 1)) for i in self.items if i.kind in ("table", "metric") and "." in i.name}
        return [list(k) for k in sorted(keys)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "preview": self.preview,
            "changes": [asdict(c) for c in self.changes],
            "unknown": [asdict(c) for c in self.unknown],
            "summary": {k: len(self.of_kind(k)) for k in _ORDER if self.of_kind(k)},
            "items": [{**asdict(i), "path": list(i.path)} for i in self.items],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        head = ", ".join(f"{c.kind} {c.id}" for c in self.changes)
        lines = [f"Impact of {head}{' (preview)' if self.preview else ''}:"]
        lines += [f"  ! {c.kind} {c.id} is not referenced by any column" for c in self.unknown]
        for kind in _ORDER:
            chosen = [i for i in self.items if i.kind == kind and i.hops > 0]
            if chosen:
                lines.append(f"{kind} ({len(chosen)})")
                lines += [f"  [{i.hops}] {i.name}    via {' → '.join(i.path)}" for i in chosen]
        if len(lines) == 1 + len(self.unknown):
            lines.append("  nothing affected")
        return "\n".join(lines)


def changes_from_diff(diff: Any) -> list[StandardChange]:
    """StandardChanges from a ``medlake.standards.StandardDiff``: changed/removed elements and value domains,
    elements whose binding changed, and changed mapping tables. Additions affect nothing that exists yet."""
    changes = [StandardChange("data_element", c.id) for c in diff.elements_changed]
    changes += [StandardChange("data_element", e) for e in diff.elements_removed]
    changes += [StandardChange("value_domain", c.id) for c in diff.domains_changed]
    changes += [StandardChange("value_domain", d) for d in diff.domains_removed]
    for line in diff.bindings_changed:  # "table.column: OLD → NEW"
        _, _, elements = line.partition(": ")
        changes += [StandardChange("data_element", e.strip()) for e in elements.split("→") if e.strip() != "-"]
    changes += [StandardChange("mapping_table", mapping_key(m.institution, m.category)) for m in diff.mappings_changed]
    return list(dict.fromkeys(changes))


def _item_kind(graph: LineageGraph, node: str) -> str:
    kind = graph.kind(node)
    if kind == NodeKind.DATASET.value:
        return "table"
    if kind == NodeKind.JOB.value:
        return "dbt_model" if str(graph.g.nodes[node].get("integration", "")).upper() == "DBT" else "job"
    return kind


def _bfs(graph: LineageGraph, seeds: list[str]) -> dict[str, tuple[int, tuple[str, ...]]]:
    reached: dict[str, tuple[int, tuple[str, ...]]] = {}
    queue: deque[str] = deque()
    for seed in seeds:
        reached[seed] = (0, (graph.label(seed),))
        queue.append(seed)

    def note(node: str, hops: int, path: tuple[str, ...]) -> None:
        if node not in reached or reached[node][0] > hops:
            reached[node] = (hops, path)

    while queue:
        node = queue.popleft()
        hops, path = reached[node]
        for nxt in sorted(graph.g.successors(node)):
            edge = graph.g.edges[node, nxt]
            if edge["kind"] == EdgeKind.INDIRECT.value:
                note(nxt, hops + 1, (*path, graph.label(nxt)))
            if edge["kind"] not in _PROPAGATING or nxt in reached:
                continue
            reached[nxt] = (hops + 1, (*path, graph.label(nxt)))
            queue.append(nxt)
            if edge["kind"] == EdgeKind.DERIVES.value and edge.get("job") in graph.g:
                note(edge["job"], hops + 1, (*path, graph.label(edge["job"])))
        if graph.kind(node) == NodeKind.COLUMN.value:
            table = graph.g.nodes[node]["dataset"]
            note(table, hops + 1, (*path, graph.label(table)))
    return reached


def impact(
    change: StandardChange | Iterable[StandardChange] | Any, graph: LineageGraph, *, preview: bool = False
) -> ImpactReport:
    """Everything downstream of a standard change (one change, several, or a StandardDiff)."""
    if isinstance(change, StandardChange):
        changes = [change]
    elif isinstance(change, list | tuple | set | frozenset):
        changes = list(change)
    else:
        changes = changes_from_diff(change)
    known = [c for c in changes if c.node in graph.g]
    report = ImpactReport(changes=changes, unknown=[c for c in changes if c.node not in graph.g], preview=preview)
    reached = _bfs(graph, [c.node for c in known])
    items = [
        ImpactItem(kind=_item_kind(graph, node), name=graph.label(node), hops=hops, path=path)
        for node, (hops, path) in reached.items()
    ]
    report.items = sorted(items, key=lambda i: (_ORDER.index(i.kind) if i.kind in _ORDER else 99, i.hops, i.name))
    return report
