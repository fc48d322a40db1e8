"""Lineage: OpenLineage events, the lineage graph, standard-change impact analysis and the data catalog."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "emitter": ["LineageEmitter", "LineageRun", "emit_run", "events_path"],
        "errors": ["EventValidationError", "LineageError"],
        "impact": ["ImpactItem", "ImpactReport", "StandardChange", "changes_from_diff", "impact"],
        "inventory": ["build_graph"],
        "graph": ["CheckSpec", "LineageGraph", "MetricInputs"],
    },
)
