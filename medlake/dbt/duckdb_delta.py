"""A dbt-duckdb plugin that reads DWD Delta tables (via delta-rs) and lands external models as Delta tables.

dbt-duckdb can read Delta but not write it. Its ``external`` materialization writes the model to a Parquet file and
then hands the file to the model's plugin (``store``); this plugin turns that file into an atomic Delta overwrite at
``<lake_root>/<model name>``, so every subject theme is a Delta table like the other layers.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
from dbt.adapters.duckdb.plugins.delta import Plugin as _DeltaReader
from dbt.adapters.duckdb.utils import TargetConfig
from deltalake import CommitProperties, write_deltalake

from medlake.engine.polars_engine import commit_with_retry
from medlake.lake.crashpoints import crash_point

__all__ = ["Plugin"]


class Plugin(_DeltaReader):
    """``load`` comes from dbt-duckdb's delta plugin; ``store`` is ours."""

    def initialize(self, config: dict[str, Any]) -> None:
        root = config.get("lake_root")
        if not root:
            raise ValueError("medlake.dbt.duckdb_delta needs 'lake_root' in its plugin config (profiles.yml)")
        self.lake_root = str(root).rstrip("/")  # a folder or an object-store URI (MEDLAKE_LAKE_URI)

    def store(self, target_config: TargetConfig) -> None:
        if target_config.location is None:
            raise ValueError(f"{target_config.relation}: external model has no location to land")
        name = str(target_config.config.get("delta_name") or target_config.relation.identifier)
        data = pq.read_table(target_config.location.path)
        path = f"{self.lake_root}/{name}"
        commit_with_retry(path, lambda: write_deltalake(
            path,
            data,
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=CommitProperties(custom_metadata={"medlake.dbt_model": name}),
        ))
        crash_point("dbt.land.after_commit")
