"""The dbt-duckdb output for the embedded engine (``MEDLAKE_ENGINE=polars``)."""

from __future__ import annotations

from typing import Any

from medlake.config import Settings

__all__ = ["dbt_duckdb_output"]


def dbt_duckdb_output(settings: Settings) -> dict[str, Any]:
    """dbt-duckdb in memory, reading DWD Delta tables through delta-rs and landing marts as Delta tables through
    medlake's plugin (``medlake.dbt.duckdb_delta``)."""
    return {
        "type": "duckdb",
        "path": ":memory:",
        "threads": 1,
        "external_root": str(settings.work / "dbt" / "external"),
        "plugins": [{"module": "medlake.dbt.duckdb_delta", "alias": "delta_lake",
                     "config": {"lake_root": f"{settings.lake}/theme"}}],
    }
