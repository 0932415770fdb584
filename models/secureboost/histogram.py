"""Plaintext gradient histograms on fixed-point integers.

A histogram of one node over one party's features is a pair of int64 arrays
``(G, H)`` of shape (features, width): the sums of the node's quantized
gradients and hessians per bucket. All sums are exact integers, so a histogram
decrypted from ciphertexts, built from plaintext, or derived by subtracting a
sibling from its parent is the same array, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hist:
    """Per-bucket integer sums of one node: ``g`` and ``h`` are (features, width)."""

    g: np.ndarray
    h: np.ndarray

    def __sub__(self, other: Hist) -> Hist:
        return Hist(self.g - other.g, self.h - other.h)

    @property
    def n_features(self) -> int:
        """Number of features (rows of the arrays)."""
        return int(self.g.shape[0])

    @staticmethod
    def empty(n_features: int, width: int) -> Hist:
        """An all-zero histogram."""
        return Hist(np.zeros((n_features, width), dtype="int64"), np.zeros((n_features, width), dtype="int64"))


def _flat_bins(bins: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """Each (row, feature)'s bucket as one index into a (features x width) array."""
    n_features = bins.shape[1]
    return (bins[rows].astype("int64") + np.arange(n_features, dtype="int64") * width).ravel()


def build(bins: np.ndarray, rows: np.ndarray, g: np.ndarray, h: np.ndarray, width: int) -> Hist:
    """Histogram of ``rows`` over every column of ``bins`` (rows x features)."""
    n_features = bins.shape[1]
    if n_features == 0 or len(rows) == 0:
        return Hist.empty(n_features, width)
    flat = _flat_bins(bins, rows, width)
    reps = np.repeat(rows, n_features)
    size = n_features * width
    # float64 weights add exactly here: every partial sum stays below 2**53.
    gs = np.bincount(flat, weights=g[reps].astype("float64"), minlength=size)
    hs = np.bincount(flat, weights=h[reps].astype("float64"), minlength=size)
    shape = (n_features, width)
    return Hist(np.rint(gs).astype("int64").reshape(shape), np.rint(hs).astype("int64").reshape(shape))


def nonempty(bins: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """Bool (features, width): which buckets hold at least one of ``rows``."""
    out = np.zeros((bins.shape[1], width), dtype=bool)
    if len(rows) and bins.shape[1]:
        out.ravel()[np.unique(_flat_bins(bins, rows, width))] = True
    return out


def sent_slots(mask: np.ndarray) -> np.ndarray:
    """Buckets whose sums travel encrypted: the non-empty ones except each feature's last.

    The last non-empty bucket is the node's total minus the others, which the
    label owner computes itself. Returns (k, 2) [feature, bucket] pairs in
    feature-major order.
    """
    out: list[tuple[int, int]] = []
    for f in range(mask.shape[0]):
        nz = np.flatnonzero(mask[f])
        out.extend((f, int(b)) for b in nz[:-1])
    return np.array(out, dtype="int64").reshape(-1, 2)


def complete(mask: np.ndarray, slots: np.ndarray, g: np.ndarray, h: np.ndarray, total: tuple[int, int]) -> Hist:
    """Rebuild a full histogram from the sent slot sums and the node's totals (G, H)."""
    out = Hist.empty(mask.shape[0], mask.shape[1])
    if len(slots):
        out.g[slots[:, 0], slots[:, 1]] = g
        out.h[slots[:, 0], slots[:, 1]] = h
    for f in range(mask.shape[0]):
        nz = np.flatnonzero(mask[f])
        if len(nz):
            out.g[f, nz[-1]] = total[0] - out.g[f].sum()
            out.h[f, nz[-1]] = total[1] - out.h[f].sum()
    return out
