"""AUC, KS and the ROC/KS plots shown to risk modellers (label owner only)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve


def _check(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel().astype(int)
    score = np.asarray(score, dtype="float64").ravel()
    if y.shape != score.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({score.shape[0]}) differ in length")
    if len(np.unique(y)) != 2:
        raise ValueError("AUC and KS need both classes in the evaluation set")
    if not np.isfinite(score).all():
        raise ValueError("scores contain NaN or infinite values")
    return y, score


def auc(y: np.ndarray, score: np.ndarray) -> float:
    y, score = _check(y, score)
    return float(roc_auc_score(y, score))


def ks(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: max gap between the classes' score CDFs."""
    y, score = _check(y, score)
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.max(tpr - fpr))


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def roc_plot(y: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "ROC (held-out)") -> bytes:
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for name, s in scores.items():
        yy, ss = _check(y, s)
        fpr, tpr, _ = roc_curve(yy, ss)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(yy, ss):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def ks_plot(y: np.ndarray, score: np.ndarray, name: str) -> bytes:
    """Cumulative share of goods and bads by score; the KS gap marked."""
    yy, ss = _check(y, score)
    order = np.argsort(-ss)
    ys = yy[order]
    frac = np.arange(1, len(ys) + 1) / len(ys)
    cum_bad = np.cumsum(ys) / max(ys.sum(), 1)
    cum_good = np.cumsum(1 - ys) / max((1 - ys).sum(), 1)
    gap = cum_bad - cum_good
    i = int(np.argmax(gap))
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot(frac, cum_bad, label="defaults (cum.)")
    ax.plot(frac, cum_good, label="non-defaults (cum.)")
    ax.vlines(frac[i], cum_good[i], cum_bad[i], color="red", linestyle="--", label=f"KS {gap[i]:.3f}")
    ax.set_xlabel("Share of firms, riskiest first")
    ax.set_ylabel("Cumulative share")
    ax.set_title(f"KS: {name}")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def bands_plot(shares: Mapping[str, Sequence[float]], bands: Sequence[str], title: str) -> bytes:
    """Share of firms per risk band, one bar group per named distribution (e.g. training vs this scoring)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    width = 0.8 / max(1, len(shares))
    x = np.arange(len(bands))
    for i, (name, values) in enumerate(shares.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, list(bands))
    ax.set_xlabel("Risk band (A safest, F riskiest)")
    ax.set_ylabel("Share of firms")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def iv_tables(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IV per feature (strongest first) and summed per party and catalogue category."""
    table = pd.DataFrame(rows).sort_values("iv", ascending=False)
    by = table.groupby(["party", "category"], as_index=False).agg(iv=("iv", "sum"), features=("feature", "count"),
                                                                 selected=("selected", "sum"))  # fmt: skip
    return table, by.sort_values("iv", ascending=False)


def iv_plot(table: pd.DataFrame, top: int = 25) -> bytes:
    """IV per feature (the ``top`` strongest), coloured by party; the usual 0.02 / 0.1 / 0.3
    guides (weak, medium, strong) dotted."""
    return bars_plot(table, "iv", (0.02, 0.1, 0.3), "Information value", "IV per feature (scorecard binning)", top)


def bars_plot(table: pd.DataFrame, value: str, guides: tuple[float, ...], xlabel: str, title: str,
              top: int = 25) -> bytes:  # fmt: skip
    """Horizontal bars of ``value`` per ``party: feature`` (the ``top`` largest), coloured by
    party, with dotted guide lines."""
    rows = table.sort_values(value, ascending=False).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.4, max(2.5, 0.28 * len(rows) + 1)))
    parties = sorted(set(rows["party"]))
    colours = {p: f"C{i}" for i, p in enumerate(parties)}
    labels = [f"{r.party}: {r.feature}" for r in rows.itertuples()]
    ax.barh(labels, rows[value], color=[colours[p] for p in rows["party"]])
    for x in guides:
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _png(fig)


def uplift_plot(table: pd.DataFrame) -> bytes:
    """Per catalogue category: AUC it adds alone on top of the bank's features, and AUC lost
    when it alone is left out of the full model."""
    rows = table.sort_values("uplift_alone").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, max(2.5, 0.45 * len(rows) + 1)))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, rows["uplift_alone"], height=0.4, label="alone, over the bank's features")
    ax.barh(y + 0.2, rows["loss_left_out"], height=0.4, label="lost when left out of the full model")
    ax.set_yticks(y, rows["category"])
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel("AUC")
    ax.set_title("What each data category adds (held-out AUC)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)
