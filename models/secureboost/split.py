"""Split gain, best split and leaf weight: ``sgb_v``'s formulas.

A node with gradient sum G and hessian sum H has objective ``G**2 / (H + lambda)``
(0 when ``H + lambda`` is 0). A split's gain is ``obj(L) + obj(R) - obj(L + R)``
and a node splits when its best gain exceeds ``gamma``. Leaf weight:
``-G / (H + lambda) * learning_rate`` (0 for an empty node). Candidate ``k`` of a
feature sends buckets ``0..k`` left. Candidates are scanned in a fixed order
(parties' blocks in order, then features, then buckets) and ties go to the
first, so any engine fed the same integer histograms makes the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.secureboost.histogram import Hist


@dataclass(frozen=True)
class Candidate:
    """The best split of a node: the party's block, the feature, the bucket and the gain."""

    block: int
    feature: int
    bucket: int
    gain: float


def objective(g: np.ndarray, h: np.ndarray, reg_lambda: float) -> np.ndarray:
    """Node objective G**2 / (H + lambda), elementwise; 0 where the denominator is 0."""
    den = h + reg_lambda
    return np.divide(g * g, den, out=np.zeros_like(den), where=den > 0)


def gains(hist: Hist, n_bins: np.ndarray, total: tuple[int, int], scale: float, reg_lambda: float) -> np.ndarray:
    """Gain of every candidate (features x (width - 1)); invalid candidates are -inf."""
    width = hist.g.shape[1]
    if hist.n_features == 0 or width < 2:
        return np.full((hist.n_features, max(width - 1, 0)), -np.inf)
    gl = np.cumsum(hist.g, axis=1)[:, :-1].astype("float64") / scale
    hl = np.cumsum(hist.h, axis=1)[:, :-1].astype("float64") / scale
    gt, ht = np.full(1, total[0] / scale), np.full(1, total[1] / scale)
    out = objective(gl, hl, reg_lambda) + objective(gt - gl, ht - hl, reg_lambda) - objective(gt, ht, reg_lambda)
    valid = np.arange(width - 1)[None, :] < (np.asarray(n_bins)[:, None] - 1)
    return np.where(valid, out, -np.inf)


def best(blocks: Sequence[tuple[Hist, np.ndarray]], total: tuple[int, int], scale: float,
         reg_lambda: float) -> Candidate | None:  # fmt: skip
    """The best candidate over the blocks, the first in scan order on ties; None if there is none."""
    top: Candidate | None = None
    for b, (hist, n_bins) in enumerate(blocks):
        gmat = gains(hist, n_bins, total, scale, reg_lambda)
        if gmat.size == 0:
            continue
        i = int(np.argmax(gmat))
        value = float(gmat.ravel()[i])
        if np.isfinite(value) and (top is None or value > top.gain):
            f, k = divmod(i, gmat.shape[1])
            top = Candidate(b, f, k, value)
    return top


def node_weight(g: int, h: int, scale: float, reg_lambda: float, learning_rate: float) -> float:
    """The weight of a node with integer sums (g, h) at fixed-point ``scale``, as a leaf."""
    if h == 0 or h / scale + reg_lambda == 0:
        return 0.0
    return -(g / scale) / (h / scale + reg_lambda) * learning_rate
