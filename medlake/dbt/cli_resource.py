"""dagster-dbt's CLI resource as medlake runs it, imported only when dbt runs (it imports dagster-dbt/dbt-core)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from typing import Any

from dagster_dbt import DbtCliResource
from packaging.version import Version

__all__ = ["MedlakeDbtCliResource"]


class MedlakeDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource without two things it does in this process before every invocation, which took
    ~50 s of the demo's theme step on a busy machine: running ``dbt --version`` (a dbt start-up, plus a PyPI
    request for the latest release) to learn the version of the dbt it runs — that dbt is the pinned dbt-core
    installed beside this interpreter, so its version is read from the package metadata — and building a dbt Core
    adapter (profile, macros, partial-parse manifest), which serves only ``fetch_column_metadata`` /
    ``fetch_row_counts``, neither of which medlake calls. dbt itself runs in its own process either way.
    Overrides two private dagster-dbt methods: dagster-dbt is pinned exactly, and the end-to-end test runs dbt."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None
