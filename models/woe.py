"""Weight of evidence (WOE) and information value (IV): bins of a feature scored against the label.

Pure maths over counts. The label owner computes its own features' counts from its own rows;
a partner's per-bin counts reach it only as decrypted sums of encrypted labels (see
``docs/design/credit-risk-toolkit.md``), so everything after binning takes counts, not rows.

Conventions follow SecretFlow's vertical WOE binning, so figures compare:

* a feature's bins are intervals, left-open and right-closed, between split points, plus
  one last bin for missing values;
* ``WOE_b = ln((pos_b / P) / (neg_b / N))``, with 0.5 added to both counts of a bin where
  either is zero (an empty bin included); ``IV = sum_b (pos_b / P - neg_b / N) * WOE_b`` on
  those same smoothed shares.

Merging (ChiMerge, monotone WOE) works on counts alone and returns groups of adjacent interval
bins; the missing-value bin is never merged with an interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMOOTHING = 0.5  # added to both counts of a bin where either is zero


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Split points giving up to ``bins`` intervals of about equal row counts (missing values
    ignored); ties collapse, so fewer intervals may result."""
    if bins < 2:
        raise ValueError(f"bins: expected 2 or more, got {bins}")
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.array([], dtype="float64")
    # Split points are data values (the lower neighbour of each quantile), so each interval's
    # closed right end is a value some row holds.
    edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="lower"))
    return edges[edges < v.max()]  # a split at the maximum would leave the top interval empty


def assign(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's bin: 0..len(edges) for the intervals (right-closed), len(edges) + 1 for missing."""
    v = np.asarray(values, dtype="float64")
    out = np.searchsorted(np.asarray(edges, dtype="float64"), v, side="left")
    out[np.isnan(v)] = len(edges) + 1
    return out


def counts(bins: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(positives, rows) per bin, from each row's bin and its 0/1 label."""
    y = np.asarray(y)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("the label must hold 0/1 only")
    rows = np.bincount(bins, minlength=n_bins)
    positives = np.bincount(bins, weights=y.astype("float64"), minlength=n_bins).astype("int64")
    return positives, rows


@dataclass(frozen=True)
class BinTable:
    """One feature's bins: positive and total rows per bin (the last bin holds missing values)."""

    positives: np.ndarray
    rows: np.ndarray

    def __post_init__(self) -> None:
        p, n = np.asarray(self.positives), np.asarray(self.rows)
        if p.shape != n.shape or p.ndim != 1 or (p < 0).any() or (p > n).any():
            raise ValueError("positives and rows must be equal-length counts with positives <= rows")

    @property
    def negatives(self) -> np.ndarray:
        return np.asarray(self.rows) - np.asarray(self.positives)

    def _distributions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each bin's share of all positives and of all negatives, smoothed where a bin lacks either."""
        pos = np.asarray(self.positives, dtype="float64")
        neg = self.negatives.astype("float64")
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            raise ValueError("WOE needs both classes among the rows")
        zero = (pos == 0) | (neg == 0)
        return np.where(zero, pos + SMOOTHING, pos) / total_pos, np.where(zero, neg + SMOOTHING, neg) / total_neg

    def woe(self) -> np.ndarray:
        """WOE per bin."""
        pos, neg = self._distributions()
        return np.log(pos / neg)

    def iv_per_bin(self) -> np.ndarray:
        """Each bin's part of the IV, on the same (smoothed) shares as its WOE, as SecretFlow does."""
        pos, neg = self._distributions()
        return (pos - neg) * np.log(pos / neg)

    def iv(self) -> float:
        return float(self.iv_per_bin().sum())

    def merged(self, groups: list[list[int]]) -> BinTable:
        """Counts of groups of bins (each group a list of bin indices)."""
        pos, rows = np.asarray(self.positives), np.asarray(self.rows)
        return BinTable(np.array([pos[g].sum() for g in groups]), np.array([rows[g].sum() for g in groups]))


def _chi2(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Pearson's chi-square of two adjacent bins' (positives, negatives); 0 where a column is empty."""
    table = np.array([a, b], dtype="float64")
    total = table.sum()
    if total == 0:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return float(terms.sum())


def chimerge(table: BinTable, max_bins: int, threshold: float = 3.841) -> list[list[int]]:
    """ChiMerge over the interval bins: merge the adjacent pair with the smallest chi-square
    while more than ``max_bins`` intervals remain or that chi-square is below ``threshold``
    (3.841: 95% with one degree of freedom). The missing bin stays a group of its own."""
    if max_bins < 1:
        raise ValueError(f"max_bins: expected 1 or more, got {max_bins}")
    n = len(table.rows) - 1  # interval bins; the last is the missing bin
    groups = [[i] for i in range(n)]
    pos, neg = list(map(float, table.positives[:n])), list(map(float, table.negatives[:n]))
    while len(groups) > 1:
        chis = [_chi2((pos[i], neg[i]), (pos[i + 1], neg[i + 1])) for i in range(len(groups) - 1)]
        i = int(np.argmin(chis))
        if len(groups) <= max_bins and chis[i] >= threshold:
            break
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
        pos[i : i + 2], neg[i : i + 2] = [pos[i] + pos[i + 1]], [neg[i] + neg[i + 1]]
    return [*groups, [n]]


def monotone(table: BinTable) -> list[list[int]]:
    """Fewest merges of adjacent interval bins making the positive rate monotone (pool adjacent
    violators, in the direction of the rate's overall trend). The missing bin stays apart."""
    n = len(table.rows) - 1
    pos, rows = np.asarray(table.positives[:n], dtype="float64"), np.asarray(table.rows[:n], dtype="float64")
    live = [i for i in range(n) if rows[i] > 0]
    if len(live) < 2:
        return [list(range(n)), [n]] if n else [[n]]
    rising = pos[live[-1]] / rows[live[-1]] >= pos[live[0]] / rows[live[0]]
    blocks: list[tuple[list[int], float, float]] = []  # (bins, positives, rows)
    for i in range(n):
        blocks.append(([i], pos[i], rows[i]))
        while len(blocks) > 1 and _violates(blocks[-2], blocks[-1], rising):
            (b1, p1, r1), (b2, p2, r2) = blocks[-2], blocks[-1]
            blocks[-2:] = [(b1 + b2, p1 + p2, r1 + r2)]
    return [*[b for b, _, _ in blocks], [n]]


def _violates(left: tuple[list[int], float, float], right: tuple[list[int], float, float], rising: bool) -> bool:
    """Whether two adjacent blocks break the order (an empty block always merges)."""
    if left[2] == 0 or right[2] == 0:
        return True
    a, b = left[1] / left[2], right[1] / right[2]
    return a > b if rising else a < b
