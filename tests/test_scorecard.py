"""Scorecard pieces without a network: encrypted per-bin counts, binning, WOE grouping, encrypted points."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.scorecard import counts
from models.scorecard import points as pts
from models.scorecard.bins import DISTINCT, FeatureWoe, PartyBins
from models.woe import BinTable


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=600), rng.integers(0, 4, 600).astype(float), rng.exponential(size=600)])
    x[rng.random(600) < 0.1, 0] = np.nan
    y = (rng.random(600) < 1 / (1 + np.exp(-x[:, 1] + 1.5))).astype("int64")
    return x, y


def test_partner_counts_under_encryption_equal_plaintext_counts(rows: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = rows
    bins = PartyBins.fit(x, ["a", "b", "c"], 10, "quantile")
    assigned = bins.assign(x)
    label = counts.LabelSide(y, "OU", 2048)
    request = label.request()
    reply = counts.reply(request, assigned, bins.n_bins)
    tables = label.tables(reply)
    for j, t in enumerate(tables):
        assert t.positives.tolist() == np.bincount(assigned[:, j], weights=y, minlength=bins.n_bins[j]).tolist()
        assert t.rows.tolist() == np.bincount(assigned[:, j], minlength=bins.n_bins[j]).tolist()
    # What the partner received holds no label: only the key, the layout, the row count and ciphertexts.
    assert sorted(request) == ["ct", "layout", "pk", "rows"]
    blob = pickle.dumps(request)
    assert bytes(np.asarray(y, dtype="int64").tobytes()) not in blob
    assert all(v not in (0, 1) for v in request["layout"])  # no label-shaped integers travel in the clear


def test_tampered_sums_are_refused(rows: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = rows
    bins = PartyBins.fit(x, ["a", "b", "c"], 10, "quantile")
    label = counts.LabelSide(y, "OU", 2048)
    request = label.request()
    reply = counts.reply(request, bins.assign(x), bins.n_bins)
    with pytest.raises(ValueError, match="bin sums"):
        label.tables({**reply, "packs": reply["packs"][:0]})
    with pytest.raises(ValueError, match="rows"):
        counts.reply({**request, "rows": 5}, bins.assign(x), bins.n_bins)


def test_few_distinct_values_get_a_bin_each_and_missing_its_own() -> None:
    x = np.array([[1.0], [2.0], [2.0], [3.0], [np.nan]] * 20)
    b = PartyBins.fit(x, ["f"], 10, "quantile")
    assert b.edges[0].tolist() == [1.0, 2.0] and b.n_bins == [4]
    assert b.assign(x)[:5, 0].tolist() == [0, 1, 1, 2, 3]
    wide = np.arange(DISTINCT + 5, dtype=float).reshape(-1, 1).repeat(10, axis=0)
    assert PartyBins.fit(wide, ["f"], 5, "quantile").n_bins[0] <= 7


def test_groups_keep_the_missing_bin_apart_and_an_empty_bin_scores_neutral() -> None:
    fine = BinTable(np.array([5, 10, 20, 40, 0]), np.array([100, 100, 100, 100, 0]))
    fw = FeatureWoe.build("bank", "f", "cat", fine, "quantile", 10, monotone=True)
    assert fw.groups[-1] == [4] and fw.woe()[-1] == 0.0
    assert np.all(np.diff(fw.fine_woe()[:4]) > 0)  # rising rates keep their order
    merged = FeatureWoe.build("bank", "f", "cat", fine, "chimerge", 2, monotone=False)
    assert len(merged.groups) == 3 and merged.iv() > 0


def test_encrypted_points_sum_per_category_as_in_plaintext(rows: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = rows
    bins = PartyBins.fit(x, ["a", "b", "c"], 8, "quantile")
    assigned = bins.assign(x[:40])
    rng = np.random.default_rng(5)
    table = [rng.normal(scale=30, size=k) for k in bins.n_bins]
    cats = ["tax", "court", "tax"]
    label = counts.LabelSide(y, "OU", 2048)
    enc = pts.encrypt_table(label.he, table, cats)
    order = ["court", "tax"]
    reply = pts.category_sums(enc, bytes(enc["pk"]), assigned, cats, order)
    got = pts.open_sums(label.he, list(enc["layout"]), reply, 40, order)
    want = np.column_stack([table[1][assigned[:, 1]], table[0][assigned[:, 0]] + table[2][assigned[:, 2]]])
    assert np.allclose(got, want, atol=3 / pts.SCALE)
    with pytest.raises(ValueError, match="do not match"):
        pts.open_sums(label.he, list(enc["layout"]), reply, 40, ["tax", "court"])


def test_the_scaling_puts_base_odds_at_the_base_score() -> None:
    s = pts.Scaling(600, 50, 20)
    logit = -np.log(50)  # odds of good to bad 50:1
    assert s.base_points(logit) == pytest.approx(600)
    assert s.base_points(logit - np.log(2)) == pytest.approx(620)  # doubling the odds adds pdo


def test_correlated_features_lose_to_the_stronger_and_inflated_ones_go() -> None:
    from models.scorecard import protocol

    s = protocol.Settings(10, "quantile", False, 0.02, 0, pts.Scaling(600, 50, 20), 1, 1.0, 8, 0.0, "OU", 2048,
                          max_corr=0.8, max_vif=3.0)  # fmt: skip
    local = protocol._Local("bank", s, ["a"], ["c"], np.zeros((1, 1)), np.zeros((1, 1)), None)

    def feature(party: str, name: str, pos: int) -> FeatureWoe:
        return FeatureWoe(
            party, name, "cat", [[0], [1], [2]], BinTable(np.array([pos, 50, 0]), np.array([100, 100, 0]))
        )

    # IV falls from a to d (10 of 100 positives against 50 of 100: the strongest).
    local.woe = {"bank": [feature("bank", "a", 10), feature("bank", "b", 20)],
                 "platform": [feature("platform", "c", 25), feature("platform", "d", 30)]}  # fmt: skip
    local.selected = {"bank": [0, 1], "platform": [0, 1]}
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 3))
    # Columns in design order: bank a, bank b, platform c, platform d. d nearly duplicates the
    # stronger b; a is close to b + c (no pair beyond 0.8, but its VIF is 22, b's and c's 11-12).
    x = np.column_stack([z[:, 1] + z[:, 2] + 0.3 * z[:, 0], z[:, 1], z[:, 2], z[:, 1] + 0.1 * z[:, 0]])
    protocol._decorrelate(local, np.cov(x, rowvar=False))
    assert local.dropped.keys() == {("platform", 1), ("bank", 0)}
    assert "corr" in local.dropped[("platform", 1)] and "VIF" in local.dropped[("bank", 0)]
    assert not local.in_card("platform", 1) and local.in_card("bank", 1)
