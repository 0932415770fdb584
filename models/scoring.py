"""Pure maths of using a model: risk bands, reason codes and score stability.

A model's raw score is its linear predictor (log-odds for SecureBoost); its
``score`` is the probability of default through the model's own link. Bands
rank a firm within the model's own training population, from the safest (A)
to the riskiest (F): A holds the safest 20% of that population, then B, C and
D 20% each, E the next 15% and F the riskiest 5%. So a band means the same
share of risk whatever the model's calibration, and a move of N bands is a
move across the same population shares. A model without a saved population
falls back to fixed probability-of-default ranges. Reason codes are the
largest contributions that raise a firm's risk, by name; no value ever goes
with a name. Stability is the population stability index (PSI) between two
score distributions, on the training population's deciles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BAND_NAMES = ("A", "B", "C", "D", "E", "F")
POPULATION_SHARES = (0.2, 0.4, 0.6, 0.8, 0.95)  # upper edges of A..E within the training population
FIXED_PD_EDGES = (0.01, 0.025, 0.05, 0.10, 0.20)  # when no population was saved
PSI_WARNING = 0.25  # above this a population has shifted enough to question the model


LINKS = ("logistic", "t1")


def probability(raw: np.ndarray, link: str = "logistic") -> np.ndarray:
    """Probability of default from raw scores, by the link the model was trained with.

    ``logistic`` is the exact sigmoid (SecureBoost). ``t1`` is SS-LR's: SecretFlow
    trains it with the first-order Taylor sigmoid ``0.5 + raw / 4`` clipped to
    [0, 1], so that is the probability its weights were fitted to, and the one its
    training job reported.
    """
    x = np.asarray(raw, dtype="float64")
    if link == "logistic":
        return np.asarray(1.0 / (1.0 + np.exp(-x)))
    if link == "t1":
        return np.clip(0.5 + x / 4.0, 0.0, 1.0)
    raise ValueError(f"unknown link {link!r}; known: {list(LINKS)}")


def band_edges(population: np.ndarray | None) -> np.ndarray:
    """Probability-of-default edges between bands: the population's quantiles, else the fixed ones."""
    if population is None or len(population) < 20:
        return np.array(FIXED_PD_EDGES)
    return np.quantile(np.asarray(population, dtype="float64"), POPULATION_SHARES)


def bands(pd_: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The band of each probability of default."""
    return np.array(BAND_NAMES, dtype=object)[np.searchsorted(edges, np.asarray(pd_, dtype="float64"), side="right")]


def band_index(band: str) -> int:
    if band not in BAND_NAMES:
        raise ValueError(f"unknown band {band!r}; bands are {list(BAND_NAMES)}")
    return BAND_NAMES.index(band)


def top_reasons(names: Sequence[str], values: np.ndarray, k: int) -> list[str]:
    """The (at most ``k``) names whose contributions raise the risk most, largest first.

    ``values`` are one row's contributions in log-odds; only positive ones (towards
    default) are reasons; ties keep the order of ``names``.
    """
    if k < 1:
        raise ValueError(f"reasons: need at least one, got {k}")
    v = np.asarray(values, dtype="float64")
    order = np.argsort(-v, kind="stable")[:k]
    return [str(names[i]) for i in order if v[i] > 0]


def reasons(contributions: pd.DataFrame, k: int) -> pd.DataFrame:
    """``reason_1`` .. ``reason_k`` of every row (None where fewer names raise its risk).

    ``contributions`` holds one column per feature or category plus ``bias``
    (which is never a reason).
    """
    if k < 1:
        raise ValueError(f"reasons: need at least one, got {k}")
    named = contributions.drop(columns=["bias"], errors="ignore")
    names, values = list(map(str, named.columns)), named.to_numpy(dtype="float64")
    picked = [top_reasons(names, row, k) for row in values] if len(values) else []
    out = {f"reason_{j + 1}": [r[j] if j < len(r) else None for r in picked] for j in range(k)}
    return pd.DataFrame(out, index=contributions.index)


def shares_index(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    """Population (or characteristic) stability index of two count vectors over the same bins."""
    pe = np.asarray(expected_counts, dtype="float64")
    pa = np.asarray(actual_counts, dtype="float64")
    if pe.shape != pa.shape or pe.sum() <= 0 or pa.sum() <= 0:
        raise ValueError("stability needs two non-empty count vectors over the same bins")
    pe, pa = np.clip(pe / pe.sum(), 1e-6, None), np.clip(pa / pa.sum(), 1e-6, None)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def stability(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``, on ``expected``'s quantiles."""
    e = np.asarray(expected, dtype="float64")
    a = np.asarray(actual, dtype="float64")
    if len(e) < bins or len(a) == 0:
        raise ValueError(f"stability needs at least {bins} expected and one actual value")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    pe = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1)
    pa = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1)
    return shares_index(pe, pa)


def band_counts(band_of_rows: np.ndarray) -> list[dict[str, object]]:
    """Firms per band, an aggregate report (the output gate suppresses small cells)."""
    return [{"band": name, "firms": int(np.sum(band_of_rows == name))} for name in BAND_NAMES]
