"""What the standard-change sensor needs from the standards registry: where the releases live, which one is
active, what changed between two sensor states, and the lineage graph of a release.

A change of the active version is diffed release against release (``medlake.standards.diff``). A file edited in
place is mapped to what it defines, read from its current content: a codes CSV → the value domains using it, a
mapping CSV → that mapping table, ``value_domains.yaml`` → its domains, ``elements.yaml`` → its elements,
``bindings.yaml`` → the elements it binds, ``relations.yaml`` → the elements it relates. (The sensor keeps only file
hashes, so an edited YAML file counts as a change of everything it defines; a deleted file is not mapped.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from medlake.config import Settings
from medlake.errors import MedlakeError

if TYPE_CHECKING:  # the lineage graph (networkx, OpenLineage) loads when the sensor evaluates, not with the sensor
    from medlake.lineage.graph import LineageGraph
    from medlake.lineage.impact import StandardChange

__all__ = [
    "active_standards_version",
    "changed_files",
    "standards_changes",
    "standards_data_dir",
    "standards_lineage_graph",
]


def standards_data_dir(current: Settings) -> Path:
    """The registry's release folders: ``MEDLAKE_STANDARDS_DIR`` or the shipped ``medlake/standards/data``."""
    from medlake.standards.registry import standards_dir

    return standards_dir(current)


def active_standards_version(current: Settings) -> str:
    """``MEDLAKE_STANDARDS_VERSION`` or the newest release."""
    from medlake.standards import Registry

    return current.standards_version or Registry.versions(standards_data_dir(current))[-1]


def changed_files(old: Any, new: Any) -> list[str]:
    """Relative paths added, removed or modified between two ``StandardsState``\\s."""
    return sorted(p for p in set(old.files) | set(new.files) if old.files.get(p) != new.files.get(p))


def _yaml_entries(path: Path, key: str) -> list[Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    entries = data.get(key) if isinstance(data, dict) else None
    return entries if isinstance(entries, list | dict) else []


def _ids(entries: Iterable[Any], field: str) -> list[str]:
    return [str(e[field]) for e in entries if isinstance(e, dict) and e.get(field)]


def _file_changes(registry: Any, root: Path, relative: str) -> list[StandardChange]:
    from medlake.lineage.impact import StandardChange
    from medlake.lineage.inventory import mapping_key

    parts = Path(relative).parts
    if len(parts) < 2:
        return []
    inside, path = Path(*parts[1:]).as_posix(), root / relative
    if parts[1] == "mappings" and len(parts) == 4:
        return [StandardChange("mapping_table", mapping_key(parts[2], Path(parts[3]).stem))]
    if inside.endswith(".csv"):
        return [StandardChange("value_domain", d.id) for d in registry.value_domains if d.reference_file == inside]
    if inside == "value_domains.yaml":
        return [StandardChange("value_domain", i) for i in _ids(_yaml_entries(path, "value_domains"), "id")]
    if inside == "elements.yaml":
        return [StandardChange("data_element", i) for i in _ids(_yaml_entries(path, "elements"), "id")]
    if inside == "relations.yaml":
        elements = [e for r in _yaml_entries(path, "relations") if isinstance(r, dict) for e in r.get("elements", [])]
        return [StandardChange("data_element", str(e)) for e in elements]
    if inside == "bindings.yaml":
        tables = _yaml_entries(path, "bindings")
        bound = [v for cols in (tables.values() if isinstance(tables, dict) else []) if isinstance(cols, dict)
                 for v in cols.values()]
        return [StandardChange("data_element", str(b["element"] if isinstance(b, dict) else b)) for b in bound]
    return []


def standards_changes(current: Settings, old: Any, new: Any) -> list[StandardChange]:
    """The standard changes between two sensor states (``sensors.standard_change.StandardsState``) of the
    releases under ``current``'s standards folder."""
    from medlake.lineage.impact import changes_from_diff
    from medlake.standards import Registry, diff

    root = standards_data_dir(current)
    changes: list[StandardChange] = []
    known = Registry.versions(root)
    if old.version != new.version and old.version in known and new.version in known:
        changes += changes_from_diff(diff(old.version, new.version, root))
    try:
        registry = Registry.load(new.version, root)
    except MedlakeError:
        return changes
    for relative in changed_files(old, new):
        changes += _file_changes(registry, root, relative)
    return list(dict.fromkeys(changes))


def standards_lineage_graph(
    current: Settings, version: str | None = None, *, checks_dir: Path | None = None
) -> LineageGraph:
    """The lineage graph of a standards release (the newest when ``version`` is None) for ``current``'s lake and
    folders: the event log, that release's bindings, the generated checks and the metric specs."""
    from medlake.lineage.derivation import metric_lineage_spec
    from medlake.lineage.inventory import build_graph
    from medlake.metrics import METRICS
    from medlake.standards import Registry
    from medlake.standards.contracts import default_checks_dir

    return build_graph(
        current, registry=Registry.load(version, standards_data_dir(current)),
        checks_dir=checks_dir or default_checks_dir(current),
        metrics=[metric_lineage_spec(m) for m in METRICS],
    )
