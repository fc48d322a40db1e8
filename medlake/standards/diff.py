"""What changed between two standards releases: elements, value domains (codes), bindings and mapping tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlake.standards.model import ValueDomain
from medlake.standards.registry import Registry

__all__ = ["DomainChange", "ElementChange", "MappingChange", "StandardDiff", "diff"]


@dataclass(frozen=True)
class ElementChange:
    id: str
    fields: dict[str, tuple[Any, Any]]  # field → (old, new)


@dataclass(frozen=True)
class DomainChange:
    id: str
    codes_added: list[str] = field(default_factory=list)
    codes_removed: list[str] = field(default_factory=list)
    labels_changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # format, length, name, standard


@dataclass(frozen=True)
class MappingChange:
    institution: str
    category: str
    added: list[str] = field(default_factory=list)  # local codes
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StandardDiff:
    old: str
    new: str
    elements_added: list[str] = field(default_factory=list)
    elements_removed: list[str] = field(default_factory=list)
    elements_changed: list[ElementChange] = field(default_factory=list)
    domains_added: list[str] = field(default_factory=list)
    domains_removed: list[str] = field(default_factory=list)
    domains_changed: list[DomainChange] = field(default_factory=list)
    bindings_changed: list[str] = field(default_factory=list)  # "table.column: old → new"
    mappings_changed: list[MappingChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in self.__dataclass_fields__ if f not in ("old", "new"))


def _domain_change(old: ValueDomain, new: ValueDomain) -> DomainChange | None:
    fields = {
        f: (getattr(old, f), getattr(new, f))
        for f in ("name", "standard", "format", "length")
        if getattr(old, f) != getattr(new, f)
    }
    change = DomainChange(
        id=new.id,
        codes_added=[c for c in new.codes if c not in old.codes],
        codes_removed=[c for c in old.codes if c not in new.codes],
        labels_changed={c: (old.codes[c], new.codes[c]) for c in new.codes if c in old.codes
                        and old.codes[c] != new.codes[c]},
        fields=fields,
    )
    has_change = change.codes_added or change.codes_removed or change.labels_changed or fields
    return change if has_change else None


def _mapping_changes(a: Registry, b: Registry) -> list[MappingChange]:
    out: list[MappingChange] = []
    for institution, category in sorted(set(a.mapping_keys) | set(b.mapping_keys)):
        rows = []
        for reg in (a, b):
            if (institution, category) in reg.mapping_keys:
                frame = reg.mapping_table(institution, category)
                rows.append({r["local_code"]: r for r in frame.iter_rows(named=True)})
            else:
                rows.append({})
        old, new = rows
        change = MappingChange(
            institution, category,
            added=[k for k in new if k not in old],
            removed=[k for k in old if k not in new],
            changed=[k for k in new if k in old and new[k] != old[k]],
        )
        if change.added or change.removed or change.changed:
            out.append(change)
    return out


def diff(v1: str, v2: str, data_dir: Path | None = None) -> StandardDiff:
    """Differences from release ``v1`` to release ``v2`` (under ``data_dir``, default the settings' folder)."""
    a, b = Registry.load(v1, data_dir), Registry.load(v2, data_dir)
    ea, eb = {e.id: e for e in a.elements}, {e.id: e for e in b.elements}
    elements_changed = []
    for eid in sorted(set(ea) & set(eb)):
        old, new = ea[eid].as_dict(), eb[eid].as_dict()
        fields = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
        if fields:
            elements_changed.append(ElementChange(eid, fields))
    da, db = {d.id: d for d in a.value_domains}, {d.id: d for d in b.value_domains}
    domains_changed = [c for d in sorted(set(da) & set(db)) if (c := _domain_change(da[d], db[d])) is not None]
    ba = {(x.table, x.column): x for x in a.bindings}
    bb = {(x.table, x.column): x for x in b.bindings}
    bindings_changed = [
        f"{t}.{c}: {ba[(t, c)].element_id if (t, c) in ba else '-'} → {bb[(t, c)].element_id if (t, c) in bb else '-'}"
        for t, c in sorted(set(ba) | set(bb))
        if ba.get((t, c)) != bb.get((t, c))
    ]
    return StandardDiff(
        old=a.version, new=b.version,
        elements_added=sorted(set(eb) - set(ea)), elements_removed=sorted(set(ea) - set(eb)),
        elements_changed=elements_changed,
        domains_added=sorted(set(db) - set(da)), domains_removed=sorted(set(da) - set(db)),
        domains_changed=domains_changed, bindings_changed=bindings_changed,
        mappings_changed=_mapping_changes(a, b),
    )
