"""Turn accepted pairs into clusters, honouring cannot-link constraints.

Connected components are found vectorized (min-label propagation with pointer jumping, numpy). Only
components that violate a constraint — two different valid ID numbers, or both ends of a manual unlink —
are re-clustered greedily: strongest edges first (manual links before all), joining two groups only when
their valid ID sets are compatible and no unlink separates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl

__all__ = ["constrained_components"]


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    labels = np.arange(n, dtype=np.int64)
    if left.size == 0:
        return labels
    while True:
        low = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        while True:  # pointer jumping: follow labels to their own label
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


class _Groups:
    """Union-find over a few nodes with per-group valid ID sets and unlink partners."""

    def __init__(self, ids: Mapping[int, frozenset[str]], apart: Mapping[int, set[int]]) -> None:
        self.parent: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}
        self.ids: dict[int, frozenset[str]] = dict(ids)
        self.apart = apart

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        self.members.setdefault(x, [x])
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def _separated(self, a: int, b: int) -> bool:
        small, other = (a, b) if len(self.members[a]) <= len(self.members[b]) else (b, a)
        return any(self.find(p) == other for m in self.members[small] for p in self.apart.get(m, ()))

    def join(self, a: int, b: int, forced: bool) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or self._separated(ra, rb):
            return
        ia, ib = self.ids.get(ra, frozenset()), self.ids.get(rb, frozenset())
        if not forced and ia and ib and not (ia <= ib or ib <= ia):
            return
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        self.parent[gone] = keep
        self.members[keep].extend(self.members.pop(gone))
        self.ids[keep] = ia | ib


def constrained_components(
    n_nodes: int,
    edges: pl.DataFrame,
    valid_ids: Mapping[int, frozenset[str]],
    cannot_link: Iterable[tuple[int, int]] = (),
) -> np.ndarray:
    """Cluster label (the smallest node index of its cluster) for nodes ``0..n_nodes-1``.

    ``edges`` has int columns ``a``, ``b``, float ``score`` and bool ``forced`` (manual links).
    ``valid_ids`` gives the valid ID numbers a node carries (nodes absent carry none).
    """
    left = edges["a"].to_numpy().astype(np.int64, copy=False)
    right = edges["b"].to_numpy().astype(np.int64, copy=False)
    labels = _components(n_nodes, left, right)
    apart: dict[int, set[int]] = {}
    for a, b in cannot_link:
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)
    ids_per_label: dict[int, set[str]] = {}
    for node, ids in valid_ids.items():
        if ids:
            ids_per_label.setdefault(int(labels[node]), set()).update(ids)
    bad = {label for label, ids in ids_per_label.items() if len(ids) > 1}
    bad |= {int(labels[a]) for a, partners in apart.items() for b in partners if labels[a] == labels[b]}
    if not bad:
        return labels
    bad_edges = (
        edges.with_columns(pl.Series("_label", labels[left]))
        .filter(pl.col("_label").is_in(sorted(bad)))
        .sort(["forced", "score"], descending=True)
    )
    groups = _Groups({n: i for n, i in valid_ids.items() if labels[n] in bad}, apart)
    for a, b, forced in bad_edges.select("a", "b", "forced").iter_rows():
        groups.join(a, b, forced)
    nodes = np.flatnonzero(np.isin(labels, np.fromiter(bad, dtype=np.int64)))
    for node in nodes:
        labels[node] = groups.find(int(node))
    fixed = labels.copy()
    for node in nodes:  # relabel each new group by its smallest member
        fixed[node] = min(groups.members[groups.find(int(node))])
    return fixed
