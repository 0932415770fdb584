"""A party's profile of its own features at training, and their stability against new rows.

At training every party bins its own training rows (the scorecard's bins: one
bin per value for a feature with few values, else deciles, and a bin for
missing values) and keeps the counts per bin in its own model part. When the
model is used, each party compares the rows it now holds with that profile: the
characteristic stability index (CSI) of each of its features, between the
training date and the scoring date (or the training dataset and another). A
party computes only its own features' indices; only the indices travel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enclave.files import write_json
from models.scorecard.bins import PartyBins
from models.scoring import shares_index

FILE = "profile.json"
BINS = 10
CSI_WARNING = 0.25  # the usual bound of a significant shift, as for the score's stability index


@dataclass(frozen=True)
class Profile:
    """One party's features: bins fitted on its training rows and the rows per bin."""

    bins: PartyBins
    counts: tuple[np.ndarray, ...]

    @staticmethod
    def fit(x: pd.DataFrame, bins: int = BINS) -> Profile:
        values = x.to_numpy(dtype="float64")
        b = PartyBins.fit(values, [str(c) for c in x.columns], bins, "quantile")
        assigned = b.assign(values)
        return Profile(b, tuple(np.bincount(assigned[:, j], minlength=k) for j, k in enumerate(b.n_bins)))

    def csi(self, x: pd.DataFrame) -> list[dict[str, Any]]:
        """Each feature's stability index of ``x`` (the same features) against the training rows."""
        if tuple(str(c) for c in x.columns) != self.bins.features:
            raise ValueError("the rows to compare hold other features than the profile")
        if len(x) == 0:
            return []
        assigned = self.bins.assign(x.to_numpy(dtype="float64"))
        now = [np.bincount(assigned[:, j], minlength=len(c)) for j, c in enumerate(self.counts)]
        return [{"feature": f, "csi": round(shares_index(c, n), 6), "rows": len(x)}
                for f, c, n in zip(self.bins.features, self.counts, now, strict=True)]  # fmt: skip

    def save(self, directory: Path) -> None:
        write_json(directory / FILE, {"features": list(self.bins.features),
                                      "edges": [e.tolist() for e in self.bins.edges],
                                      "counts": [c.tolist() for c in self.counts]})  # fmt: skip

    @staticmethod
    def load(directory: Path) -> Profile | None:
        """The profile kept in a part directory; None for a part trained before profiles were kept."""
        path = directory / FILE
        if not path.is_file():
            return None
        doc = json.loads(path.read_text())
        edges = tuple(np.asarray(e, dtype="float64") for e in doc["edges"])
        return Profile(PartyBins(tuple(doc["features"]), edges),
                       tuple(np.asarray(c, dtype="int64") for c in doc["counts"]))  # fmt: skip
