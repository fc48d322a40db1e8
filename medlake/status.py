"""``medlake status``: every lake table by layer with row counts, plus quarantine, reconciliation and checks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rich.console import Console

from medlake.config import Settings, settings, subfolders
from medlake.layers import Layer
from medlake.lineage.catalog import CatalogEntry, catalog
from medlake.lineage.delta_log import delta_snapshot
from medlake.listing import Column, listing_table

__all__ = ["LakeStatus", "lake_status", "print_status"]

_NOT_GOVERNED = {*(layer.value for layer in Layer), "quarantine", "audit"}


@dataclass
class LakeStatus:
    tables: list[CatalogEntry]
    quarantined: dict[str, int] = field(default_factory=dict)  # "ods_patient" → records
    loads: dict[str, int] = field(default_factory=dict)  # load-log status → files
    checks: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (checks, failed)

    def to_dict(self) -> dict[str, Any]:
        """The status as plain data (``medlake status --json``)."""
        return {
            "tables": [e.to_dict() for e in self.tables],
            "quarantined": self.quarantined,
            "loads": self.loads,
            "checks": {name: {"checks": n, "failed": failed} for name, (n, failed) in self.checks.items()},
        }


def _folder_counts(settings_: Settings, folder: str) -> dict[str, int]:
    counts = {}
    for path in subfolders(settings_.lake / folder):
        snap = delta_snapshot(path)
        if snap is not None:
            counts[path.name] = snap.rows or 0
    return counts


def lake_status(current: Settings | None = None) -> LakeStatus:
    current = current or settings()
    status = LakeStatus(tables=catalog(current), quarantined=_folder_counts(current, "quarantine"))
    for path in (p for p in subfolders(current.lake / "audit") if p.name.startswith("ods_loads_")):
        for row in pl.read_delta(str(path)).group_by("status").len().iter_rows():
            status.loads[row[0]] = status.loads.get(row[0], 0) + row[1]
    for entry in status.tables:
        if entry.last_check:
            status.checks[entry.name] = (int(entry.last_check.get("checks", 0)), int(entry.last_check.get("failed", 0)))
    return status


def print_status(current: Settings | None = None, console: Console | None = None) -> LakeStatus:
    console = console or Console()
    current_settings = current or settings()
    status = lake_status(current_settings)
    by_layer: dict[str, list[CatalogEntry]] = defaultdict(list)
    for entry in status.tables:
        by_layer[entry.layer].append(entry)
    layer_columns = [Column("table", max_width=32), Column("rows", "number"), Column("version", "number"),
                     Column("last commit (UTC)"), Column("checks")]
    for layer in [layer.value for layer in Layer if layer.value in by_layer]:
        rows = []
        for e in by_layer[layer]:
            checks = status.checks.get(e.name)
            outcome = "—" if checks is None else f"{checks[0] - checks[1]}/{checks[0]} passed"
            when = e.freshness.strftime("%Y-%m-%d %H:%M:%S") if e.freshness else "—"
            rows.append((e.name, f"{e.rows:,}" if e.rows is not None else "?", e.version, when, outcome))
        console.print(listing_table(layer_columns, rows, console=console, title=f"{layer.upper()} layer"))
    governed = {
        f"{folder.name}.{name}": rows
        for folder in subfolders(current_settings.lake) if folder.name not in _NOT_GOVERNED
        for name, rows in _folder_counts(current_settings, folder.name).items()
    }
    if governed:
        console.print(listing_table([Column("table", max_width=60), Column("rows", "number")],
                                    [(name, f"{rows:,}") for name, rows in governed.items()], console=console,
                                    title="Governed outputs (YAML workflows, governance tables)"))
    if status.quarantined:
        console.print(listing_table([Column("table", max_width=60), Column("records", "number")],
                                    [(name, f"{rows:,}") for name, rows in status.quarantined.items()],
                                    console=console, title="Quarantine (refused records, with file/line/field/reason)"))
    if status.loads:
        console.print("Delivered files by reconciliation status: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(status.loads.items())))
        if not_reconciled := sum(v for k, v in status.loads.items() if k in ("mismatch", "rejected")):
            console.print(f"{not_reconciled} files not reconciled with their manifests: per file in "
                          f"{current_settings.lake / 'audit'}/ods_loads_<table> and each ODS asset's metadata")
    if not status.tables:
        console.print(f"No tables yet under {current_settings.lake}. Run `medlake synth` then `medlake run`.")
    return status
