"""The subject themes' asset and check specs, cached beside the dbt manifest.

``@dbt_assets`` needs dagster-dbt, which imports dbt-core: several seconds paid by every process that loads the
definitions (each step of a run launched from the UI is one). The specs it derives from the manifest are plain
data, so they are computed once by dagster-dbt itself (:mod:`medlake.dbt.translator`) and stored as JSON under
``dbt_project/target/``, keyed by the manifest's SHA-256, the dagster-dbt version and the translator's source.
A new manifest, dagster-dbt or translator recomputes them; a read-only checkout computes them in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetCheckSpec, AssetDep, AssetKey, AssetSpec
from dagster_shared.serdes import deserialize_value, serialize_value

from medlake.dbt.project import DBT_PROJECT_DIR, manifest_path

if TYPE_CHECKING:
    from dagster import AssetsDefinition

__all__ = ["ThemeSpecs", "theme_specs"]

_FORMAT = 1
_TRANSLATOR_SOURCE = Path(__file__).with_name("translator.py")
# dagster-dbt's run-time objects on each spec (the parsed manifest, the translator); read back when dbt runs from
# the equivalent @dbt_assets definition, so they are not cached.
_RUNTIME_METADATA = ("dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator")


@dataclass(frozen=True)
class ThemeSpecs:
    """What ``multi_asset`` needs to define the themes as ``@dbt_assets`` would."""

    name: str
    specs: list[AssetSpec]
    check_specs: list[AssetCheckSpec]
    op_tags: dict[str, str]


def _cache_key(manifest: Path) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    digest.update(_TRANSLATOR_SOURCE.read_bytes())
    return f"{_FORMAT}:{version('dagster-dbt')}:{digest.hexdigest()}"


def _metadata(metadata: Mapping[str, Any]) -> str:
    return serialize_value({k: v for k, v in metadata.items() if k not in _RUNTIME_METADATA})


def _dep(dep: AssetDep) -> dict[str, Any]:
    return {"key": dep.asset_key.path, "metadata": _metadata(dep.metadata or {})}


def _undep(raw: Mapping[str, Any]) -> AssetDep:
    return AssetDep(AssetKey(raw["key"]), metadata=deserialize_value(raw["metadata"], dict))


def _to_json(assets_def: AssetsDefinition) -> dict[str, Any]:
    specs = [
        {"key": s.key.path, "deps": [_dep(d) for d in s.deps], "description": s.description,
         "metadata": _metadata(s.metadata), "group_name": s.group_name, "skippable": s.skippable,
         "code_version": s.code_version, "owners": list(s.owners), "tags": dict(s.tags)}
        for s in assets_def.specs
    ]
    checks = [
        {"name": c.name, "asset": c.asset_key.path, "description": c.description, "blocking": c.blocking,
         "additional_deps": [_dep(d) for d in c.additional_deps], "metadata": _metadata(c.metadata or {})}
        for c in assets_def.check_specs
    ]
    return {"name": assets_def.op.name, "op_tags": dict(assets_def.op.tags), "specs": specs, "check_specs": checks}


def _from_json(raw: Mapping[str, Any]) -> ThemeSpecs:
    specs = [
        AssetSpec(AssetKey(s["key"]), deps=[_undep(d) for d in s["deps"]], description=s["description"],
                  metadata=deserialize_value(s["metadata"], dict), group_name=s["group_name"],
                  skippable=s["skippable"], code_version=s["code_version"], owners=s["owners"], tags=s["tags"])
        for s in raw["specs"]
    ]
    checks = [
        AssetCheckSpec(c["name"], asset=AssetKey(c["asset"]), description=c["description"], blocking=c["blocking"],
                       additional_deps=[_undep(d) for d in c["additional_deps"]],
                       metadata=deserialize_value(c["metadata"], dict))
        for c in raw["check_specs"]
    ]
    return ThemeSpecs(raw["name"], specs, checks, dict(raw["op_tags"]))


def _computed(project_dir: Path) -> dict[str, Any]:
    from medlake.dbt.translator import dbt_theme_assets  # dagster-dbt and dbt-core: the slow path

    return _to_json(dbt_theme_assets(project_dir))


def _store(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically, so concurrent step processes never read half a file; best effort on a read-only checkout."""
    try:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
            json.dump(payload, f)
        os.replace(f.name, path)
    except OSError:
        pass


def theme_specs(project_dir: Path = DBT_PROJECT_DIR) -> ThemeSpecs:
    """The themes' specs from the cache beside the manifest, recomputed by dagster-dbt when stale (and the manifest
    parsed again first when a project file is newer than it, see :func:`~medlake.dbt.project.manifest_path`)."""
    manifest = manifest_path(project_dir)
    cache_file, key = manifest.with_name("medlake_theme_specs.json"), _cache_key(manifest)
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if cached.get("key") != key:
        cached = {"key": key, **_computed(project_dir)}
        _store(cache_file, cached)
    return _from_json(cached)
