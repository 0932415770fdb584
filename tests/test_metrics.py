"""AUC, KS and plots against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics


def test_perfect_and_reversed_ranking() -> None:
    y = np.array([0, 0, 1, 1])
    assert metrics.auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.ks(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_ks_by_hand() -> None:
    # Bads at scores 0.9, 0.4; goods at 0.8, 0.3, 0.2: best cut after 0.9 or 0.4.
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.3, 0.2])
    # At threshold 0.4: TPR 1.0, FPR 1/3 -> KS 2/3.
    assert metrics.ks(y, s) == pytest.approx(2 / 3)
    assert metrics.auc(y, s) == pytest.approx(5 / 6)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="both classes"):
        metrics.auc(np.array([1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="differ in length"):
        metrics.ks(np.array([0, 1]), np.array([0.1]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc(np.array([0, 1]), np.array([0.1, np.nan]))


def test_plots_are_png() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = y * 0.3 + rng.random(200)
    for png in (metrics.roc_plot(y, {"a": s, "b": rng.random(200)}), metrics.ks_plot(y, s, "a")):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
