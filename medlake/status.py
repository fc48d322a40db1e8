"""``medlake status``: every lake table by layer with row counts, plus quarantine, reconciliation and checks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import polars as pl
from rich.console import Console
from rich.table import Table

from medlake.config import Settings, settings, subfolders
from medlake.layers import Layer
from medlake.lineage.catalog import CatalogEntry, catalog
from medlake.lineage.delta_log import delta_snapshot

__all__ = ["LakeStatus", "lake_status", "print_status"]

_NOT_GOVERNED = {*(layer.value for layer in Layer), "quarantine", "audit"}


@dataclass
class LakeStatus:
    tables: list[CatalogEntry]
    quarantined: dict[str, int] = field(default_factory=dict)  # "ods_patient" → records
    loads: dict[str, int] = field(default_factory=dict)  # load-log status → files
    checks: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (checks, failed)


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
    for layer in [layer.value for layer in Layer if layer.value in by_layer]:
        entries = by_layer[layer]
        table = Table(title=f"{layer.upper()} layer", title_justify="left")
        table.add_column("table", no_wrap=True)
        for column in ("rows", "version", "last commit (UTC)", "checks"):
            table.add_column(column, justify="right" if column in ("rows", "version") else "left", no_wrap=True)
        for e in entries:
            checks = status.checks.get(e.name)
            outcome = "—" if checks is None else f"{checks[0] - checks[1]}/{checks[0]} passed"
            when = e.freshness.strftime("%Y-%m-%d %H:%M:%S") if e.freshness else "—"
            table.add_row(e.name, f"{e.rows:,}" if e.rows is not None else "?", str(e.version), when, outcome)
        console.print(table)
    governed = {
        f"{folder.name}.{name}": rows
        for folder in subfolders(current_settings.lake) if folder.name not in _NOT_GOVERNED
        for name, rows in _folder_counts(current_settings, folder.name).items()
    }
    if governed:
        g = Table(title="Governed outputs (YAML workflows, governance tables)", title_justify="left")
        g.add_column("table", no_wrap=True)
        g.add_column("rows", justify="right")
        for name, rows in governed.items():
            g.add_row(name, f"{rows:,}")
        console.print(g)
    if status.quarantined:
        q = Table(title="Quarantine (refused records, with file/line/field/reason)", title_justify="left")
        q.add_column("table")
        q.add_column("records", justify="right")
        for name, rows in status.quarantined.items():
            q.add_row(name, f"{rows:,}")
        console.print(q)
    if status.loads:
        console.print("Delivered files by reconciliation status: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(status.loads.items())))
        if not_reconciled := sum(v for k, v in status.loads.items() if k in ("mismatch", "rejected")):
            console.print(f"{not_reconciled} files not reconciled with their manifests: per file in "
                          f"{current_settings.lake / 'audit'}/ods_loads_<table> and each ODS asset's metadata")
    if not status.tables:
        console.print(f"No tables yet under {current_settings.lake}. Run `medlake synth` then `medlake run`.")
    return status
