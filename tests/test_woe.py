"""WOE/IV maths: binning, counts, WOE and IV by SecretFlow's formulas, ChiMerge and monotone merging."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from models.woe import BinTable, assign, chimerge, counts, monotone, quantile_edges


def test_bins_are_right_closed_and_missing_values_have_their_own() -> None:
    edges = np.array([1.0, 2.0])
    got = assign(np.array([0.5, 1.0, 1.5, 2.0, 2.5, np.nan]), edges)
    assert got.tolist() == [0, 0, 1, 1, 2, 3]


def test_quantile_edges_give_equal_bins_and_ties_collapse() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=10_000)
    v[::10] = np.nan
    edges = quantile_edges(v, 10)
    sizes = np.bincount(assign(v, edges))
    assert len(edges) == 9 and sizes[-1] == 1000 and np.ptp(sizes[:-1]) <= 2
    assert quantile_edges(np.array([0.0] * 50 + [1.0] * 50), 10).tolist() == [0.0]  # two values, two bins
    assert quantile_edges(np.array([np.nan, np.nan]), 5).size == 0
    with pytest.raises(ValueError, match="bins"):
        quantile_edges(v, 1)


def test_woe_and_iv_follow_the_textbook_formulas() -> None:
    table = BinTable(np.array([10, 30, 0]), np.array([100, 60, 40]))  # last: missing, no positives
    pos, neg = np.array([10, 30, 0.5]), np.array([90, 30, 40.5])
    want = np.log((pos / 40) / (neg / 160))  # smoothed bin, unsmoothed totals
    assert np.allclose(table.woe(), want)
    assert table.iv() == pytest.approx(float(((pos / 40 - neg / 160) * want).sum()))
    # A feature whose bins all have the label's overall rate is worth nothing.
    assert BinTable(np.array([5, 10, 1]), np.array([50, 100, 10])).iv() == pytest.approx(0.0, abs=1e-12)


def test_counts_come_from_rows_and_refuse_other_labels() -> None:
    positives, rows = counts(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 0, 0, 1, 1, 0]), 4)
    assert positives.tolist() == [1, 0, 2, 0] and rows.tolist() == [2, 1, 3, 0]
    with pytest.raises(ValueError, match="0/1"):
        counts(np.array([0, 1]), np.array([1, 2]), 2)
    with pytest.raises(ValueError, match="positives <= rows"):
        BinTable(np.array([3]), np.array([2]))


def test_chimerge_merges_the_most_alike_neighbours_and_keeps_the_missing_bin_apart() -> None:
    # Rates 10%, 11%, 50%, 52%, 90%; the missing bin (last) has 50%.
    table = BinTable(np.array([10, 11, 50, 52, 90, 5]), np.array([100, 100, 100, 100, 100, 10]))
    groups = chimerge(table, max_bins=3)
    assert groups == [[0, 1], [2, 3], [4], [5]]
    assert chimerge(table, max_bins=1) == [[0, 1, 2, 3, 4], [5]]
    # Bins that differ significantly are kept even under max_bins.
    assert chimerge(BinTable(np.array([0, 100, 0]), np.array([100, 100, 0])), max_bins=5) == [[0], [1], [2]]
    merged = table.merged(groups)
    assert merged.positives.tolist() == [21, 102, 90, 5] and merged.rows.tolist() == [200, 200, 100, 10]
    assert merged.iv() <= table.iv() + 1e-12  # merging never adds information


def test_monotone_merging_pools_only_the_violators() -> None:
    table = BinTable(np.array([5, 20, 15, 40, 60, 3]), np.array([100, 100, 100, 100, 100, 10]))
    groups = monotone(table)
    assert groups == [[0], [1, 2], [3], [4], [5]]
    rates = [p / n for p, n in zip(table.merged(groups).positives[:-1], table.merged(groups).rows[:-1], strict=True)]
    assert rates == sorted(rates)
    falling = BinTable(np.array([60, 40, 45, 10, 0]), np.array([100, 100, 100, 100, 0]))
    assert monotone(falling) == [[0], [1, 2], [3], [4]]
    already = BinTable(np.array([1, 2, 3, 0]), np.array([10, 10, 10, 0]))
    assert monotone(already) == [[0], [1], [2], [3]]
    assert all(math.isfinite(w) for w in already.woe())


def test_woe_and_iv_equal_secretflow_s_own_per_bin_formula() -> None:
    from secretflow.preprocessing.binning.vert_woe_binning_pyu import VertWoeBinningPyuWorker

    table = BinTable(np.array([0, 3, 17, 40, 9, 0]), np.array([12, 40, 90, 60, 9, 0]))
    owner = SimpleNamespace(total_labels=int(table.rows.sum()), total_positives=int(table.positives.sum()))
    # The class is SecretFlow's actor proxy; its own method is the one it wraps.
    calc = VertWoeBinningPyuWorker._calc_bin_woe_iv.__wrapped__
    theirs = [calc(owner, int(n), int(p)) for p, n in zip(table.positives, table.rows, strict=True)]
    assert np.allclose(table.woe(), [w for w, _ in theirs]) and np.allclose(table.iv_per_bin(), [v for _, v in theirs])
