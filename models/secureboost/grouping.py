"""Fewer homomorphic additions: bucket sums through joint cells of feature groups.

Adding each of a node's n rows into one bucket per feature costs n x F
ciphertext additions. If features are grouped and each row is first added into
the *cell* of its joint bucket combination within its group (n additions per
group), every feature's bucket sum is then a sum of cells, costing only
``|group| x cells`` more. Groups whose joint combinations are few (binary and
categorical columns, correlated amounts) halve the additions or better, with
the same bucket sums.

The planner chooses groups per node from the passive party's own bins (best-fit
greedy over features in increasing cardinality) with a cost model in units of
one addition: ``n + |group| * cells + CELL_OVERHEAD * cells`` per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELL_OVERHEAD = 3.5  # per-cell cost of a batch select-sum, in additions (measured on HEU's OU)
MAX_GROUP = 10  # features per group; bounds the planner's work


@dataclass(frozen=True)
class Group:
    """Features of one group, each row's cell, and each cell's bins."""

    features: tuple[int, ...]
    cell_of_row: np.ndarray  # (n,) int64 in [0, cells)
    cell_bins: np.ndarray  # (cells, len(features)): the bins of each cell

    @property
    def cells(self) -> int:
        """Number of non-empty cells."""
        return int(self.cell_bins.shape[0])


def _cells(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compact cell ids per row (in code order) and the first row of each cell."""
    if len(codes) == 0:
        return codes.astype("int64"), codes.astype("int64")
    top = int(codes.max())
    if top > 8 * len(codes) + 1024:  # sparse codes: sorting beats a lookup table
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return inverse.astype("int64"), first.astype("int64")
    present = np.zeros(top + 1, dtype=bool)
    present[codes] = True
    inverse = (np.cumsum(present) - 1)[codes].astype("int64")
    first = np.empty(int(present.sum()), dtype="int64")
    first[inverse[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return inverse, first


def _count(codes: np.ndarray) -> int:
    """Number of distinct values of ``codes`` (what ``_cells`` would number), without numbering them."""
    if len(codes) == 0:
        return 0
    top = int(codes.max())
    if top > 8 * len(codes) + 1024:
        return len(np.unique(codes))
    present = np.zeros(top + 1, dtype=bool)
    present[codes] = True
    return int(np.count_nonzero(present))


def group_cost(n: int, size: int, cells: int) -> float:
    """Additions (plus bookkeeping) to get ``size`` features' sums through ``cells`` cells."""
    return n + (size * cells if size > 1 else 0) + CELL_OVERHEAD * cells


def singletons(bins: np.ndarray) -> list[Group]:
    """Every feature its own group: plain per-feature bucket sums."""
    b = bins.astype("int64")
    out = []
    for f in range(b.shape[1]):
        inv, first = _cells(b[:, f])
        out.append(Group((f,), inv, b[first][:, [f]]))
    return out


def plan(bins: np.ndarray, width: int, enabled: bool = True) -> list[Group]:
    """Greedy grouping of the columns of ``bins`` (the node's rows x features).

    Each feature, in increasing cardinality, joins the open group whose cost
    grows least, or opens a new group when that is cheaper.
    """
    n, n_features = bins.shape
    if n_features == 0:
        return []
    if not enabled:
        return singletons(bins)
    b = bins.astype("int64")
    card = np.array([np.count_nonzero(np.bincount(b[:, f])) for f in range(n_features)])
    open_groups: list[tuple[list[int], np.ndarray, np.ndarray]] = []
    for f in (int(v) for v in np.argsort(card, kind="stable")):
        # Candidates are compared by their cell counts alone; only the chosen one is numbered.
        best_delta, best_gi = group_cost(n, 1, int(card[f])), -1
        for gi, (feats, g_inv, g_first) in enumerate(open_groups):
            if len(feats) >= MAX_GROUP:
                continue
            joint = _count(g_inv * width + b[:, f])
            delta = group_cost(n, len(feats) + 1, joint) - group_cost(n, len(feats), len(g_first))
            if delta < best_delta:
                best_delta, best_gi = delta, gi
        if best_gi < 0:
            open_groups.append(([f], *_cells(b[:, f])))
        else:
            feats, g_inv, _ = open_groups[best_gi]
            open_groups[best_gi] = ([*feats, f], *_cells(g_inv * width + b[:, f]))
    return [Group(tuple(feats), inv, b[first][:, feats]) for feats, inv, first in open_groups]


def cell_rows(group: Group, positions: np.ndarray) -> list[list[int]]:
    """Ciphertext positions of the rows in each cell of ``group`` (``positions``: the node's rows)."""
    order = np.argsort(group.cell_of_row, kind="stable")
    bounds = np.searchsorted(group.cell_of_row[order], np.arange(group.cells + 1)).tolist()
    ordered = positions[order].tolist()  # one conversion, then list slices: far faster than per cell
    return [ordered[bounds[c] : bounds[c + 1]] for c in range(group.cells)]


def slot_cells(groups: list[Group], slots: np.ndarray) -> list[list[int]]:
    """For each sent (feature, bucket) slot: the indices of the cells summing to it.

    Cell indices run over all groups' cells, concatenated in group order.
    """
    where: dict[int, tuple[int, int, int]] = {}
    offset = 0
    for gi, g in enumerate(groups):
        for j, f in enumerate(g.features):
            where[f] = (gi, j, offset)
        offset += g.cells
    by_bucket: dict[int, list[list[int]]] = {}
    for f, (gi, j, off) in where.items():
        col = groups[gi].cell_bins[:, j]
        order = np.argsort(col, kind="stable")
        bounds = np.searchsorted(col[order], np.arange(int(col.max()) + 2)).tolist()
        cells = (order + off).tolist()
        by_bucket[f] = [cells[bounds[b] : bounds[b + 1]] for b in range(len(bounds) - 1)]
    return [by_bucket[int(f)][int(b)] for f, b in slots]


def additions(lists: list[list[int]]) -> int:
    """Ciphertext additions a batch select-sum over ``lists`` performs."""
    return sum(max(len(x) - 1, 0) for x in lists)
