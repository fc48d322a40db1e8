"""Assemble the lineage graph from everything that knows a dependency: events, standards, checks, metrics.

Thin adapters over ``medlake.standards``: ``Registry.bindings`` (column ← data element), ``Registry.element(id)
.value_domain`` (element ← value domain), ``Registry.mapping_keys`` (institution/category mapping tables, feeding
the local-code columns they translate) and the generated Soda contracts ``checks/generated/<table>.yaml``
(read with ``medlake.standards.read_contract_rules``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medlake.config import Settings, settings
from medlake.errors import MedlakeError
from medlake.lineage.emitter import events_path
from medlake.lineage.errors import LineageError
from medlake.lineage.graph import CheckSpec, LineageGraph, MetricInputs

__all__ = ["MAPPING_TARGETS", "add_registry", "build_graph", "load_check_files", "mapping_key"]

# Which DWD columns a mapping-table category translates (the transcode step derives national codes from them).
MAPPING_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "drug": (("order_item", "local_item_code"),),
    "service": (("order_item", "local_item_code"),),
    "diagnosis": (("diagnosis", "diag_code"),),
}


def mapping_key(institution: str, category: str) -> str:
    """The id of an institution's mapping table: ``institution/category``."""
    return f"{institution}/{category}"


def add_registry(graph: LineageGraph, registry: Any) -> int:
    """Add the bindings (column ← data element ← value domain) and mapping tables of a standards registry."""
    count = 0
    for binding in registry.bindings:
        domain = registry.element(binding.element_id).value_domain
        graph.add_binding(binding.table, binding.column, binding.element_id, str(domain) if domain else None)
        count += 1
    for institution, category in getattr(registry, "mapping_keys", ()):
        graph.add_mapping_table(mapping_key(institution, category), MAPPING_TARGETS.get(category, ()))
    return count


def load_check_files(folder: Path) -> list[CheckSpec]:
    """Every rule of every generated contract ``*.yaml`` in ``folder`` (ids and the columns they read)."""
    from medlake.standards import read_contract_rules

    specs: list[CheckSpec] = []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            rules = read_contract_rules(path)
        except MedlakeError as exc:
            raise LineageError(f"{path}: not a generated check contract ({exc})") from exc
        specs += [
            CheckSpec(id=r.rule_id, table=f"dwd.{r.table}", columns=(r.column,) if r.column else (), source=str(path))
            for r in rules
        ]
    return specs


def build_graph(
    config: Settings | None = None,
    *,
    events: Path | None = None,
    registry: Any = None,
    checks_dir: Path | None = None,
    metrics: Iterable[MetricInputs] = (),
    checks: Iterable[CheckSpec] = (),
) -> LineageGraph:
    """One graph from the event log (default ``$MEDLAKE_HOME/work/lineage/events.jsonl``), a standards registry,
    generated check files and metric specs. Missing sources are skipped."""
    cfg = config or settings()
    graph = LineageGraph(lake=cfg.lake)
    log_file = events or events_path(cfg)
    if log_file.is_file():
        graph.add_events_file(log_file)
    if registry is not None:
        add_registry(graph, registry)
    for spec in [*checks, *(load_check_files(checks_dir) if checks_dir and checks_dir.is_dir() else [])]:
        graph.add_check(spec)
    for metric in metrics:
        graph.add_metric(metric)
    return graph
