"""The data catalog: every lake table by scenario and layer, with owner, GB/T 39725 classification, row count
and freshness read from the Delta log (no data scan), and the last quality-check outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from medlake.config import Settings, settings, subfolders
from medlake.layers import Layer
from medlake.lineage.delta_log import delta_snapshot
from medlake.sources import SOURCES

__all__ = ["CHECK_RESULTS", "CatalogEntry", "catalog", "search"]

CHECK_RESULTS = ("quality", "check_results")
_LABELS = {s.name: s.label for s in SOURCES}


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # "dwd.patient"
    layer: str
    scenario: str
    description: str
    owner: str
    category: str  # GB/T 39725 data category
    grade: int | None  # GB/T 39725 grade (1 … 5)
    rows: int | None
    columns: tuple[str, ...]
    version: int
    freshness: datetime | None  # time of the last commit
    last_check: dict[str, Any] = field(default_factory=dict)
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["freshness"] = self.freshness.isoformat() if self.freshness else None
        data["columns"] = list(self.columns)
        return data


@lru_cache(maxsize=1)
def _metadata() -> dict[str, Any]:
    return yaml.safe_load(Path(__file__).with_name("catalog.yaml").read_text(encoding="utf-8"))


def _describe(layer: Layer, table: str) -> dict[str, Any]:
    meta = _metadata()
    info = {**meta["defaults"], **meta.get("layers", {}).get(layer.value, {}), **meta["tables"].get(table, {})}
    label = _LABELS.get(table)
    info.setdefault("scenario", table)
    info["description"] = f"{label} — {layer.description}" if label else layer.description
    return info


def _last_checks(config: Settings) -> dict[str, dict[str, Any]]:
    """Latest check run per table from the quality runner's results table (``medlake.quality.runner``): rules
    checked, rules not passed, outcome and time. The runner writes one row per rule and institution."""
    location = config.table_path(*CHECK_RESULTS)
    if delta_snapshot(location) is None:
        return {}
    latest = pl.read_delta(str(location), columns=["table", "rule_id", "outcome", "checked_at"]).filter(
        pl.col("checked_at") == pl.col("checked_at").max().over("table"))
    summary = latest.group_by("table").agg(
        pl.col("rule_id").n_unique().alias("checks"),
        pl.col("rule_id").filter(pl.col("outcome") != "pass").n_unique().alias("failed"),
        pl.col("checked_at").max().cast(pl.Utf8).alias("at"),
    )
    return {
        str(row.pop("table")): {**row, "outcome": "failed" if row["failed"] else "passed"}
        for row in summary.iter_rows(named=True)
    }


def catalog(config: Settings | None = None) -> list[CatalogEntry]:
    """Every Delta table under the lake's layer folders, sorted by scenario, layer and name."""
    cfg = config or settings()
    checks = _last_checks(cfg)
    entries = []
    for layer in Layer:
        for path in subfolders(cfg.lake / layer.value):
            snapshot = delta_snapshot(path)
            if snapshot is None:
                continue
            info = _describe(layer, path.name)
            name = f"{layer.value}.{path.name}"
            entries.append(
                CatalogEntry(
                    name=name, layer=layer.value, scenario=str(info["scenario"]), description=info["description"],
                    owner=str(info.get("owner", "")), category=str(info.get("category", "unclassified")),
                    grade=info.get("grade"), rows=snapshot.rows, columns=tuple(snapshot.schema.names),
                    version=snapshot.version, freshness=snapshot.last_commit,
                    last_check=checks.get(name, checks.get(path.name, {}) if layer is Layer.DWD else {}),
                    location=str(path),
                )
            )
    order = {layer.value: i for i, layer in enumerate(Layer)}
    return sorted(entries, key=lambda e: (e.scenario, order[e.layer], e.name))


def search(entries: list[CatalogEntry], text: str) -> list[CatalogEntry]:
    """Entries whose name, description or a column contains ``text`` (case-insensitive)."""
    needle = text.lower()
    return [
        e for e in entries
        if needle in e.name.lower() or needle in e.description.lower() or any(needle in c.lower() for c in e.columns)
    ]
