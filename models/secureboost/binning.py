"""Per-feature quantile binning: the same rule as SecretFlow's ``sgb_v``.

``sketch_eps`` gives ``ceil(1 / sketch_eps)`` buckets (0.05 -> 20). Split points
are the column's quantiles at ``i / buckets``; when quantiles coincide (skewed or
low-cardinality columns) a sequential search places them on distinct values
instead. A value's bin is the number of split points at or below it
(``numpy.digitize``), so candidate ``k`` sends a row left exactly when
``bin <= k``, i.e. when ``x < points[k]``. Every party bins its own columns
alone; nothing here leaves the party.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_BUCKETS = 65534  # bins are stored as uint16 beyond 255 buckets


def buckets_for(sketch_eps: float) -> int:
    """Number of buckets for a sketch accuracy, as ``sgb_v`` computes it."""
    if not 0.0 < sketch_eps <= 1.0:
        raise ValueError(f"sketch_eps must be in (0, 1], got {sketch_eps}")
    return math.ceil(1.0 / sketch_eps)


def _skewed_split_points(x: np.ndarray, buckets: int) -> list[float]:
    """Split points on distinct values for columns whose quantiles coincide.

    A port of ``sgb_v``'s ``skew_dist_split_points_search``, step for step, so
    both engines bin identically (the tests compare them on skewed columns).
    """
    sorted_x = np.sort(x)
    n = len(sorted_x)
    categories: list[float] = []
    points: list[float] = []
    last: float | None = None
    idx, expected, fast_skip = 0, math.ceil(n / buckets), False
    while idx < n:
        v = float(sorted_x[idx])
        differs = v != last
        if not fast_skip and differs:
            if len(categories) <= buckets:
                categories.append(v)
            else:
                fast_skip = True
            last = v
        if idx >= expected and differs:
            points.append(v)
            if len(points) == buckets - 1:
                break
            expected = idx + math.ceil((n - idx) / (buckets - len(points)))
            last = v
        idx = idx + 1 if (not fast_skip or idx >= expected) else expected
    if len(categories) <= buckets:
        return categories[1:]
    if points[-1] != float(sorted_x[-1]):
        points.append(float(sorted_x[-1]))
    return points


def split_points(x: np.ndarray, buckets: int) -> np.ndarray:
    """Split points of one column: quantiles, or distinct values when skewed.

    The column keeps its own float dtype (``TreePrep`` gives float32), as in
    ``sgb_v``, so quantiles are interpolated exactly as there.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float64")
    if x.size == 0:
        raise ValueError("cannot bin an empty column")
    if not np.isfinite(x).all():
        raise ValueError("column holds NaN or inf; fill missing values first (TreePrep)")
    quantiles = [i / buckets for i in range(1, buckets + 1)]
    points = np.unique(np.quantile(x, quantiles))
    if len(points) >= buckets:
        return points.astype("float64")
    return np.asarray(_skewed_split_points(x, buckets), dtype="float64")


@dataclass(frozen=True)
class BinMapper:
    """Split points per feature, fitted on one party's training rows."""

    points: tuple[np.ndarray, ...]
    buckets: int

    @staticmethod
    def fit(x: np.ndarray, buckets: int) -> BinMapper:
        """Fit every column of ``x`` (rows x features)."""
        if not 2 <= buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be in [2, {MAX_BUCKETS}], got {buckets}")
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"expected a non-empty rows x features matrix, got shape {x.shape}")
        return BinMapper(tuple(split_points(x[:, j], buckets) for j in range(x.shape[1])), buckets)

    @property
    def n_features(self) -> int:
        """Number of fitted columns."""
        return len(self.points)

    @property
    def n_bins(self) -> np.ndarray:
        """Bins per feature: split points + 1 (the top bin holds the maximum)."""
        return np.array([len(p) + 1 for p in self.points], dtype="int64")

    @property
    def width(self) -> int:
        """The widest feature's bin count (histogram width); 1 without features."""
        return int(self.n_bins.max()) if self.points else 1

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Bin indices (rows x features; uint8, or uint16 for many buckets)."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got shape {x.shape}")
        out = np.empty(x.shape, dtype="uint8" if self.buckets < 255 else "uint16")
        for j, p in enumerate(self.points):
            out[:, j] = np.digitize(x[:, j], p)
        return out

    def threshold(self, feature: int, bucket: int) -> float:
        """The value splitting candidate ``bucket``: a row goes left iff ``x < threshold``."""
        return float(self.points[feature][bucket])
