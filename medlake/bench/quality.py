"""``python -m medlake.bench quality``: how many checks the standards generate, and how long Soda takes to run all of
them over N DWD-shaped rows (:func:`medlake.synth.dwd.synthetic_dwd`), spread over the DWD tables."""

from __future__ import annotations

from typing import Any

from medlake.bench.measure import timed
from medlake.quality.runner import run_contract
from medlake.standards.contracts import render_contract
from medlake.standards.registry import Registry
from medlake.standards.rules import derive_rules
from medlake.synth.dwd import synthetic_dwd

__all__ = ["SHARES", "bench_checks"]

SHARES = {"patient": 0.10, "encounter": 0.15, "diagnosis": 0.20, "order_item": 0.30, "lab_result": 0.15,
          "settlement": 0.10}


def bench_checks(rows: int, *, version: str | None = None, by_institution: bool = True) -> dict[str, Any]:
    """Generated check counts, and seconds to run every check over ``rows`` rows spread over the DWD tables."""
    registry = Registry.load(version)
    per_table: dict[str, Any] = {}
    types: set[str] = set()
    categories: dict[str, int] = {}
    total_checks, total_seconds = 0, 0.0
    for table in registry.tables:
        rules = derive_rules(registry, table)
        types |= {r.check_type for r in rules}
        for r in rules:
            categories[r.category] = categories.get(r.category, 0) + 1
        n = max(1, int(rows * SHARES.get(table, 0.1)))
        data = synthetic_dwd(table, n).to_arrow()
        seconds, results = timed(lambda table=table, data=data: run_contract(
            table, data, render_contract(registry, table), by_institution=by_institution))
        total_checks += len(rules)
        total_seconds += seconds
        per_table[table] = {
            "rows": n, "checks": len(rules), "seconds": round(seconds, 3),
            "outcomes": {o: sum(1 for r in results if r.outcome == o) for o in ("pass", "warn", "fail", "error")},
        }
    return {
        "standard_version": registry.version, "rows": rows, "checks": total_checks,
        "check_types": len(types), "categories": categories, "seconds": round(total_seconds, 3),
        "tables": per_table,
    }
