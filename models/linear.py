"""One party's part of a linear model (SS-LR, later the scorecard's LR): load, score, explain.

Training leaves each party ``weights.npy`` (its own slice of the coefficients,
in the order of its prepared columns) and ``prep.json`` (its own imputation and
scaling); the label owner also holds ``bias.npy``. A party's contribution to a
firm's log-odds is the sum of its terms, coefficient times standardised value;
the terms themselves are its reason codes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.prep import LinearPrep
from protocols.errors import SpecError

MISSING_SUFFIX = "__missing"


@dataclass(frozen=True)
class LinearPart:
    party: str
    prep: LinearPrep
    weights: np.ndarray
    bias: float | None  # the label owner's only
    link: str = "logistic"  # raw -> probability, as training used it (models.scoring.probability)

    @staticmethod
    def load(directory: Path, party: str) -> LinearPart:
        files = [directory / "weights.npy", directory / "prep.json"]
        if not all(f.is_file() for f in files):
            raise SpecError(f"{directory}: no linear model part here; retrain the model")
        doc = json.loads((directory / "prep.json").read_text())
        if "logged" not in doc or "link" not in doc:
            raise SpecError(f"{directory}: this linear part was saved by an older version; retrain the model")
        prep = LinearPrep(doc["median"], doc["mean"], doc["std"], tuple(doc["flags"]), tuple(doc["logged"]))
        weights = np.load(directory / "weights.npy").reshape(-1)
        if len(weights) != prep.width:
            raise SpecError(f"{directory}: {len(weights)} weights for {prep.width} prepared columns; retrain")
        bias_file = directory / "bias.npy"
        bias = float(np.load(bias_file).reshape(-1)[0]) if bias_file.is_file() else None
        return LinearPart(party, prep, weights, bias, str(doc["link"]))

    @property
    def columns(self) -> list[str]:
        return list(self.prep.mean)

    def terms(self, x: pd.DataFrame) -> pd.DataFrame:
        """Coefficient times standardised value, one column per prepared column."""
        z = self.prep.apply(x).to_numpy(dtype="float64")
        return pd.DataFrame(z * self.weights, columns=self.columns, index=x.index)

    def partial(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.terms(x).sum(axis=1).to_numpy())


def by_feature(terms: pd.DataFrame) -> pd.DataFrame:
    """Terms summed per original feature (a missing-value flag counts towards its feature)."""
    feature = [c.removesuffix(MISSING_SUFFIX) for c in terms.columns]
    return terms.T.groupby(feature, sort=False).sum().T


def by_category(terms: pd.DataFrame, categories: Mapping[str, str], prefix: str) -> pd.DataFrame:
    """Terms summed per reporting category, as ``<prefix>:<category>`` columns."""
    per_feature = by_feature(terms)
    names = [f"{prefix}:{categories.get(c) or 'other'}" for c in per_feature.columns]
    return per_feature.T.groupby(names, sort=False).sum().T
