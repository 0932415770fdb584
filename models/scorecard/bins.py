"""Each party's bins of its own features, and the label owner's WOE tables over every party's bins.

A party bins its own training rows: a feature with few distinct values gets
one bin per value, any other equal-frequency intervals (``models.woe``), and
every feature a last bin for missing values. Only the label owner, which holds
the counts of every bin (its own in plaintext, a partner's as decrypted sums),
merges bins (ChiMerge, monotone WOE) and computes WOE and IV: a partner keeps
its fine bins and never learns how the label owner grouped them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enclave.files import write_json
from models import woe

DISTINCT = 20  # a feature with at most this many distinct values gets one bin per value
CHIMERGE_START = 4  # ChiMerge starts from this many times the target bins (at least 20)
METHODS = ("quantile", "chimerge")


@dataclass(frozen=True)
class PartyBins:
    """One party's split points per feature (its own, never sent anywhere)."""

    features: tuple[str, ...]
    edges: tuple[np.ndarray, ...]

    @staticmethod
    def fit(x: np.ndarray, features: list[str], bins: int, method: str) -> PartyBins:
        """Split points from this party's training rows (NaN = missing)."""
        if method not in METHODS:
            raise ValueError(f"binning method must be one of {METHODS}, not {method!r}")
        start = bins if method == "quantile" else max(CHIMERGE_START * bins, 20)
        edges = []
        for j in range(x.shape[1]):
            v = np.asarray(x[:, j], dtype="float64")
            distinct = np.unique(v[~np.isnan(v)])
            edges.append(distinct[:-1] if len(distinct) <= DISTINCT else woe.quantile_edges(v, start))
        return PartyBins(tuple(features), tuple(edges))

    @property
    def n_bins(self) -> list[int]:
        """Bins per feature, the missing-value bin included."""
        return [len(e) + 2 for e in self.edges]

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Each row's bin per feature (rows x features, int64)."""
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected rows x {len(self.features)} features, got {x.shape}")
        return np.column_stack([woe.assign(x[:, j], e) for j, e in enumerate(self.edges)]).astype("int64")

    def labels(self, j: int) -> list[str]:
        """Readable bins of feature ``j``: right-closed intervals, then the missing-value bin."""
        e = [f"{v:.6g}" for v in self.edges[j]]
        bounds = ["-inf", *e, "inf"]
        return [f"({bounds[i]}, {bounds[i + 1]}{')' if i == len(e) else ']'}" for i in range(len(e) + 1)] + ["missing"]

    def save(self, directory: Path) -> None:
        write_json(directory / "bins.json", {"features": list(self.features),
                                             "edges": [e.tolist() for e in self.edges]})  # fmt: skip

    @staticmethod
    def load(directory: Path) -> PartyBins:
        doc = json.loads((directory / "bins.json").read_text())
        return PartyBins(tuple(doc["features"]), tuple(np.asarray(e, dtype="float64") for e in doc["edges"]))


@dataclass(frozen=True)
class FeatureWoe:
    """The label owner's view of one feature: its fine bins grouped, and the groups' counts and WOE."""

    party: str
    feature: str
    category: str
    groups: list[list[int]]  # fine bins per group; the last group is the missing-value bin
    table: woe.BinTable  # counts per group

    @staticmethod
    def build(party: str, feature: str, category: str, fine: woe.BinTable, method: str, target: int,
              monotone: bool) -> FeatureWoe:  # fmt: skip
        groups = woe.chimerge(fine, target) if method == "chimerge" else [[i] for i in range(len(fine.rows))]
        if monotone:
            coarse = fine.merged(groups)
            groups = [[b for i in g for b in groups[i]] for g in woe.monotone(coarse)]
        return FeatureWoe(party, feature, category, groups, fine.merged(groups))

    def woe(self) -> np.ndarray:
        """WOE per group; 0 (no evidence) for a group without training rows, such as an
        empty missing-value bin, so that an unseen case scores neutral."""
        return np.where(np.asarray(self.table.rows) > 0, self.table.woe(), 0.0)

    def iv(self) -> float:
        return float(np.where(np.asarray(self.table.rows) > 0, self.table.iv_per_bin(), 0.0).sum())

    def fine_woe(self) -> np.ndarray:
        """WOE per fine bin (the party's own bins)."""
        out = np.zeros(sum(len(g) for g in self.groups))
        for g, w in zip(self.groups, self.woe(), strict=True):
            out[g] = w
        return out


def select_by_iv(ivs: list[tuple[float, str, int]], iv_min: float, top_k: int) -> dict[str, list[int]]:
    """Per party, the feature indices at or above ``iv_min`` (the ``top_k`` strongest, if set);
    ``ivs`` holds (IV, party, feature index) of every feature."""
    keep = [(p, j) for iv, p, j in sorted(ivs, reverse=True) if iv >= iv_min][: top_k or None]
    return {p: sorted(j for q, j in keep if q == p) for p in {p for _, p, _ in ivs}}
