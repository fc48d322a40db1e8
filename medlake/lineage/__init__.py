"""Lineage: OpenLineage events, the lineage graph, standard-change impact analysis and the data catalog."""

from __future__ import annotations

from medlake.lineage.emitter import LineageEmitter, LineageRun, emit_run, events_path
from medlake.lineage.errors import EventValidationError, LineageError
from medlake.lineage.impact import ImpactItem, ImpactReport, StandardChange, changes_from_diff, impact
from medlake.lineage.inventory import build_graph
from medlake.lineage.store import CheckSpec, LineageGraph, MetricSpec

__all__ = [
    "CheckSpec",
    "EventValidationError",
    "ImpactItem",
    "ImpactReport",
    "LineageEmitter",
    "LineageError",
    "LineageGraph",
    "LineageRun",
    "MetricSpec",
    "StandardChange",
    "build_graph",
    "changes_from_diff",
    "emit_run",
    "events_path",
    "impact",
]
