"""Per-party preparation done inside the owner's domain.

The train/test split is a keyed hash of each aligned key, so every party
computes the same split alone, with no message exchanged. Imputation and
scaling statistics come from the party's own training rows and stay with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from protocols.errors import SpecError


def holdout_mask(keys: pd.Series | list[str], seed: int, test_fraction: float) -> np.ndarray:
    """True for keys in the held-out set; identical at every party."""
    salt = f"safehouse-split:{seed}:".encode()
    u = np.fromiter(
        (int.from_bytes(hashlib.sha256(salt + str(k).encode()).digest()[:8], "big") / 2.0**64 for k in keys),
        dtype="float64",
    )
    return u < test_fraction


@dataclass(frozen=True)
class TreePrep:
    """Missing values become a per-column sentinel below the training minimum,
    so tree splits can still separate them (SecureBoost takes no NaN)."""

    fill: dict[str, float]

    @staticmethod
    def fit(train: pd.DataFrame) -> TreePrep:
        fill = {}
        for c in train.columns:
            col = train[c].to_numpy(dtype="float64")
            lo = np.nanmin(col) if np.isfinite(col).any() else 0.0
            hi = np.nanmax(col) if np.isfinite(col).any() else 0.0
            fill[c] = float(lo - 1.0 - 0.1 * (hi - lo))
        return TreePrep(fill)

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.fillna(self.fill).astype("float32")

    @staticmethod
    def load(directory: Path) -> TreePrep:
        """The preparation a tree part was trained with (``prep.json`` beside the part)."""
        path = directory / "prep.json"
        if not path.is_file():
            raise SpecError(f"{directory}: no tree preparation saved here; retrain the model")
        return TreePrep({str(k): float(v) for k, v in json.loads(path.read_text())["fill"].items()})


@dataclass(frozen=True)
class LinearPrep:
    """Median imputation, a missing flag for columns with gaps, log-compression of
    heavy-tailed amounts, standardisation and clipping: what a logistic
    regression in fixed point needs. Every choice is made once, on the training
    rows, and applied unchanged to any rows later (a test split, a scored
    table, one firm online)."""

    median: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]
    flags: tuple[str, ...]
    logged: tuple[str, ...] = ()  # columns log1p-compressed

    @staticmethod
    def fit(train: pd.DataFrame) -> LinearPrep:
        median = {c: float(np.nan_to_num(np.nanmedian(train[c].to_numpy(dtype="float64")))) for c in train}
        flags = tuple(c for c in train if train[c].isna().any())
        filled = train.fillna(median).astype("float64")
        # Heavy-tailed amounts (non-negative, beyond 100 somewhere) are log-compressed before scaling.
        logged = tuple(c for c in filled if len(filled) and filled[c].min() >= 0 and filled[c].max() > 100)
        prepared = LinearPrep._fill(train, median, flags, logged)
        mean = {c: float(prepared[c].mean()) for c in prepared}
        std = {c: float(prepared[c].std()) or 1.0 for c in prepared}
        return LinearPrep(median, mean, std, flags, logged)

    @staticmethod
    def _fill(
        df: pd.DataFrame, median: dict[str, float], flags: tuple[str, ...], logged: tuple[str, ...]
    ) -> pd.DataFrame:
        out = df.fillna(median).astype("float64")
        for c in logged:
            # Negative values cannot come from training (it had none); they count as zero.
            out[c] = np.log1p(out[c].clip(lower=0.0))
        for c in flags:
            out[f"{c}__missing"] = df[c].isna().astype("float64")
        return out

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        filled = self._fill(df, self.median, self.flags, self.logged)
        for c in filled:
            filled[c] = ((filled[c] - self.mean[c]) / self.std[c]).clip(-5, 5)
        return filled.astype("float32")

    @property
    def width(self) -> int:
        return len(self.mean)
