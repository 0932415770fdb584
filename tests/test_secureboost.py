"""SecureBoost's pure parts: binning, packing, histograms, split finding, model parts and files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.joint_train.params import SgbParams
from models.secureboost import (
    RETRAIN_MESSAGE,
    ActivePart,
    PassivePart,
    RowWalker,
    absent_prediction,
    load_part,
    save_part,
    wire,
)
from models.secureboost import grouping as gr
from models.secureboost import histogram as hg
from models.secureboost.binning import BinMapper, buckets_for, split_points
from models.secureboost.boost import Settings, gradients
from models.secureboost.model import Node
from models.secureboost.packing import Layout, bits_for, pack, quantize, row_plaintexts, split_pair, unpack
from models.secureboost.split import best, gains, node_weight
from protocols.errors import NotFoundError, SpecError

OU_2048_BITS = 683  # HEU's OU-2048 plaintext bound is 2**683


def _columns() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=2000), rng.integers(0, 5, 2000).astype(float), np.r_[np.zeros(1700), rng.normal(size=300)],
            rng.exponential(size=2000) ** 3, np.r_[np.zeros(1950), rng.integers(1, 40, 50)].astype(float),
            np.full(100, 3.0)]  # fmt: skip


def test_buckets_follow_sketch_eps() -> None:
    assert (buckets_for(0.05), buckets_for(0.04), buckets_for(0.3)) == (20, 25, 4)
    with pytest.raises(ValueError):
        buckets_for(0.0)


@pytest.mark.parametrize("col", range(6))
def test_thresholds_agree_with_bins(col: int) -> None:
    x = _columns()[col].reshape(-1, 1)
    m = BinMapper.fit(x, 20)
    bins = m.transform(x)[:, 0]
    for k in range(int(m.n_bins[0]) - 1):
        assert np.array_equal(bins <= k, x[:, 0] < m.threshold(0, k))
    assert bins.max() < m.n_bins[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binning_is_sgb_v_s(dtype: str) -> None:
    tools = pytest.importorskip("secretflow.ml.boost.core.order_map_tools")
    for x in _columns()[:5]:
        x = x.astype(dtype)
        bins, points = tools.qcut(x, 20)
        assert np.array_equal(np.asarray(points), split_points(x, 20))
        assert np.array_equal(bins, BinMapper.fit(x.reshape(-1, 1), 20).transform(x.reshape(-1, 1))[:, 0])


def test_binning_refuses_missing_values() -> None:
    assert split_points(np.array([1.0, 2.0, 2.0, 5.0]), 20).tolist() == [2.0, 5.0]
    with pytest.raises(ValueError, match="NaN"):
        split_points(np.array([1.0, np.nan]), 20)


def test_settings_follow_sgb_params_and_refuse_what_they_cannot_do() -> None:
    s = Settings.of(SgbParams(num_boost_round=25, max_depth=4, sketch_eps=0.05))
    assert (s.trees, s.depth, s.buckets, s.schema, s.key_bits, s.label_only_trees) == (25, 4, 20, "OU", 2048, 1)
    assert Settings.of(SgbParams(he="paillier")).schema == "ZPaillier"
    with pytest.raises(ValueError, match="HE schemes"):
        Settings.of(SgbParams(he="rsa"))
    with pytest.raises(ValueError, match="too short"):
        Settings.of(SgbParams(key_bits=512))


def test_layout_and_worst_case_sums_round_trip() -> None:
    """All rows at the extreme gradient and hessian: no slot overflows."""
    n = 5000
    lay = Layout.for_rows(n, OU_2048_BITS)
    assert bits_for(n) == 13 and (lay.h_bits, lay.slot_bits) == (24, 50)
    assert lay.slots * lay.slot_bits <= OU_2048_BITS - 16
    g, h = quantize(np.full(n, -1.0), np.full(n, 0.25))
    total = int(sum(int(v) for v in row_plaintexts(g, h, lay)))
    assert split_pair(total, lay) == (int(g.sum()), int(h.sum()))
    values = [total, -total, 0, total - 1] * (lay.slots // 4) + [total] * (lay.slots % 4)
    packed = pack(values, lay)
    assert abs(packed) < 2 ** (lay.slots * lay.slot_bits - 1)
    assert unpack(packed, len(values), lay) == values


def test_stochastic_rounding_is_unbiased_bounded_and_repeatable() -> None:
    """Many rows at one score (a leaf's rows): to-nearest errs by n x its bias, stochastic by about sqrt(n)."""
    n, f = 100_000, 12
    grad, hess = np.full(n, 0.0671234), np.full(n, 0.0626180)
    near = quantize(grad, hess, f)
    sto = quantize(grad, hess, f, np.random.default_rng(1))
    exact = grad.sum() * 2**f, hess.sum() * 2**f
    for k in range(2):
        assert abs(near[k].sum() - exact[k]) > 1000  # n x a bias of about 0.4 and 0.5 of a unit
        assert abs(sto[k].sum() - exact[k]) < 5 * np.sqrt(n) / 2  # within 5 standard deviations
    again = quantize(grad, hess, f, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(sto, again, strict=True))
    g, h = quantize(np.array([-1.0, 1.0, -3.0, 0.5]), np.array([0.25, 0.0, 9.0, 0.125]), f, np.random.default_rng(2))
    top, quarter = 2**f, 2 ** (f - 2)  # the bounds hold, exact values stay exact
    assert g.tolist() == [-top, top, -top, top // 2] and h.tolist() == [quarter, 0, quarter, quarter // 2]
    y, raw = np.array([0.0, 1.0, 1.0]), np.array([0.3, -0.2, 1.5])
    assert all(np.array_equal(a, b) for a, b in zip(gradients(y, raw, f, tree=3), gradients(y, raw, f, tree=3),
                                                    strict=True))  # fmt: skip


def test_random_sums_round_trip_and_tampering_is_caught() -> None:
    rng = np.random.default_rng(1)
    lay = Layout.for_rows(1000, OU_2048_BITS)
    for _ in range(20):
        g, h = quantize(rng.uniform(-1, 1, 1000), rng.uniform(0, 0.25, 1000))
        subsets = [rng.random(1000) < 0.3 for _ in range(lay.slots)]
        vals = [int(sum(int(v) for v in row_plaintexts(g[s], h[s], lay))) for s in subsets]
        got = [split_pair(v, lay) for v in unpack(pack(vals, lay), len(vals), lay)]
        assert got == [(int(g[s].sum()), int(h[s].sum())) for s in subsets]
    with pytest.raises(ValueError, match="overflow"):
        unpack(pack([5, -7], lay) + (1 << (2 * lay.slot_bits + 3)), 2, lay)
    with pytest.raises(ValueError):
        Layout.for_rows(10, 40)
    with pytest.raises(ValueError):
        Layout.of([20, 30, 40, 1])  # a slot too narrow for a gradient pair


def _hist_data(n: int = 400, f: int = 5, width: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    bins = rng.integers(0, width, (n, f)).astype("uint8")
    bins[:, 2] = rng.integers(0, 2, n)  # a sparse feature: empty buckets
    return bins, rng.integers(-(2**20), 2**20, n), rng.integers(0, 2**18, n)


def test_histograms_are_exact_and_subtract_to_the_sibling() -> None:
    bins, g, h = _hist_data()
    rows = np.arange(0, 400, 3)
    out = hg.build(bins, rows, g, h, 7)
    for f in range(5):
        for b in range(7):
            sel = rows[bins[rows, f] == b]
            assert out.g[f, b] == g[sel].sum() and out.h[f, b] == h[sel].sum()
    everything = np.arange(400)
    left, right = everything[bins[:, 0] <= 2], everything[bins[:, 0] > 2]
    diff = hg.build(bins, everything, g, h, 7) - hg.build(bins, left, g, h, 7)
    sib = hg.build(bins, right, g, h, 7)
    assert np.array_equal(diff.g, sib.g) and np.array_equal(diff.h, sib.h)


def test_only_non_empty_buckets_travel_and_the_rest_is_rebuilt() -> None:
    bins, g, h = _hist_data()
    rows = np.arange(50, 200)
    full = hg.build(bins, rows, g, h, 7)
    mask = hg.nonempty(bins, rows, 7)
    slots = hg.sent_slots(mask)
    assert len(slots) == int(mask.sum()) - 5  # each feature's last non-empty bucket stays home
    sent = full.g[slots[:, 0], slots[:, 1]], full.h[slots[:, 0], slots[:, 1]]
    rebuilt = hg.complete(mask, slots, *sent, (int(g[rows].sum()), int(h[rows].sum())))
    assert np.array_equal(rebuilt.g, full.g) and np.array_equal(rebuilt.h, full.h)


@pytest.mark.parametrize("enabled", [True, False])
def test_feature_group_cells_give_the_bucket_sums(enabled: bool) -> None:
    rng = np.random.default_rng(5)
    n, width = 3000, 21
    bins = np.column_stack([rng.integers(0, 2, n), rng.integers(0, 4, n), rng.integers(0, 21, n),
                            rng.integers(0, 21, n), rng.integers(0, 3, n)]).astype("uint8")  # fmt: skip
    values = rng.integers(-(10**9), 10**9, n)
    rows = np.sort(rng.choice(n, 2000, replace=False))
    groups = gr.plan(bins[rows], width, enabled)
    cell_lists = [c for g in groups for c in gr.cell_rows(g, rows)]
    cells = np.array([values[c].sum() for c in cell_lists])
    slots = hg.sent_slots(hg.nonempty(bins, rows, width))
    lists = gr.slot_cells(groups, slots)
    direct = np.array([values[rows[bins[rows, f] == b]].sum() for f, b in slots])
    assert np.array_equal(np.array([cells[lst].sum() for lst in lists]), direct)
    adds = gr.additions(cell_lists) + gr.additions(lists)
    assert adds < len(rows) * 5 * 0.6 if enabled else adds == len(rows) * 5 - len(slots) - 5


def test_best_split_is_the_brute_force_best() -> None:
    rng = np.random.default_rng(3)
    bins = rng.integers(0, 6, (300, 4)).astype("uint8")
    g, h = rng.integers(-(2**20), 2**20, 300), rng.integers(0, 2**18, 300)
    cand = best([(hg.build(bins, np.arange(300), g, h, 6), np.full(4, 6))], (int(g.sum()), int(h.sum())), 2.0**20, 1.0)

    def obj(a: float, b: float) -> float:
        return a * a / (b + 1.0)

    gs, hs = g / 2.0**20, h / 2.0**20
    found = []
    for f in range(4):
        for k in range(5):
            left = bins[:, f] <= k
            gain = obj(gs[left].sum(), hs[left].sum()) + obj(gs[~left].sum(), hs[~left].sum()) - obj(gs.sum(), hs.sum())
            found.append((gain, -f, -k))  # max() then prefers the first feature and bucket on ties
    brute = max(found)
    assert cand is not None and (cand.feature, cand.bucket) == (-brute[1], -brute[2])
    assert np.isclose(cand.gain, brute[0], rtol=1e-9)


def test_ties_go_to_the_first_block_and_invalid_candidates_never_win() -> None:
    bins = np.array([[0, 0], [1, 1]], dtype="uint8")
    hist = hg.build(bins, np.arange(2), np.array([-100, 100]), np.array([10, 10]), 2)
    cand = best([(hist, np.array([2, 2])), (hist, np.array([2, 2]))], (0, 20), 1.0, 1.0)
    assert cand is not None and (cand.block, cand.feature, cand.bucket) == (0, 0, 0)
    out = gains(hg.Hist.empty(2, 4), np.array([2, 4]), (0, 0), 1.0, 0.0)  # lambda 0, empty node: no NaN
    assert np.isinf(out[0, 1:]).all() and np.isfinite(out[1]).all() and not np.isnan(out).any()
    assert node_weight(0, 0, 1.0, 1.0, 0.1) == 0.0
    assert np.isclose(node_weight(2**20, 2**20, 2.0**20, 1.0, 0.15), -0.5 * 0.15)


def _parts() -> tuple[ActivePart, PassivePart, PassivePart]:
    # root: bank x0 < 0.5; node 1: platform (tax); node 2: guarantor (guarantee); node 4: platform (tax)
    nodes = {0: Node(0.0, "bank", "x0", 0.5), 1: Node(-0.1, "platform", category="tax"),
             2: Node(0.3, "guarantor", category="guarantee"), 3: Node(-0.4), 4: Node(0.2, "platform", category="tax"),
             5: Node(0.5), 6: Node(0.1), 9: Node(0.25), 10: Node(0.15)}  # fmt: skip
    active = ActivePart("bank", ["x0", "x1"], 0.05, [nodes], {"trees": 1})
    platform = PassivePart("platform", ["z", "w"], [{1: ("z", 10.0), 4: ("w", 0.0)}])
    guarantor = PassivePart("guarantor", ["v"], [{2: ("v", 1.0)}])
    return active, platform, guarantor


def _x() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bank = np.array([[0.1, 0.0], [0.2, 0.0], [0.9, 0.0], [0.3, 0.0]])
    platform = np.array([[5.0, 1.0], [20.0, -1.0], [5.0, 0.0], [20.0, 1.0]])
    return bank, platform, np.array([[0.0], [0.0], [3.0], [0.0]])


def test_prediction_routes_with_every_party_s_splits() -> None:
    active, platform, guarantor = _parts()
    xa, xp, xg = _x()
    bits = {"platform": platform.decisions(xp), "guarantor": guarantor.decisions(xg)}
    assert np.allclose(active.predict_raw(xa, bits), [0.05 - 0.4, 0.05 + 0.25, 0.05 + 0.1, 0.05 + 0.15])
    with pytest.raises(ValueError, match="guarantor"):
        active.predict_raw(xa, {"platform": bits["platform"]})


def test_contributions_sum_to_the_score_and_passive_splits_sum_by_category() -> None:
    active, platform, guarantor = _parts()
    xa, xp, xg = _x()
    bits = {"platform": platform.decisions(xp), "guarantor": guarantor.decisions(xg)}
    c = active.contributions(xa, bits)
    assert list(c.columns) == ["x0", "x1", "guarantor:guarantee", "platform:tax", "bias"]
    assert np.allclose(c.sum(axis=1), active.predict_raw(xa, bits))
    # row 1 passes two platform nodes of category tax: 1 -> 4 (+0.3) and 4 -> 9 (+0.05), summed in one column
    assert np.allclose(c.loc[1, "platform:tax"], (0.2 - (-0.1)) + (0.25 - 0.2))
    assert np.allclose(c["x0"], [-0.1, -0.1, 0.3, -0.1]) and np.allclose(c["bias"], 0.05)
    assert np.allclose(c.loc[2, "guarantor:guarantee"], 0.1 - 0.3) and not c["x1"].any()


def test_rows_no_passive_party_holds_go_left_at_its_splits() -> None:
    active, platform, _ = _parts()
    xa, _, _ = _x()
    got = absent_prediction(active, xa)
    assert np.allclose(got.raw, [0.05 - 0.4, 0.05 - 0.4, 0.05 + 0.5, 0.05 - 0.4])
    assert got.contributions is not None and np.allclose(got.contributions.sum(axis=1), got.raw)
    with pytest.raises(TypeError):
        absent_prediction(platform, xa)


def _flat(decisions: wire.Decisions, row: int) -> bytes:
    """One row's packed decision bits, tree order, nodes ascending (what a partner sends online)."""
    return np.packbits(np.array([bool(t[n][row]) for t in decisions for n in sorted(t)], dtype=bool)).tobytes()


def test_the_one_row_walker_equals_the_vectorised_path() -> None:
    active, platform, guarantor = _parts()
    xa, xp, xg = _x()
    decisions = {"platform": platform.decisions(xp), "guarantor": guarantor.decisions(xg)}
    walker = RowWalker.of(active)
    c = active.contributions(xa, decisions)
    raw = active.predict_raw(xa, decisions)
    assert list(walker.columns) == [k for k in c.columns if k != "bias"]
    for row in range(len(xa)):
        got_raw, got = walker.score(xa[row], {p: _flat(d, row) for p, d in decisions.items()})
        assert got == c.drop(columns="bias").iloc[row].tolist() and got_raw == pytest.approx(raw[row], abs=1e-12)
    # A partner that does not hold the firm: its splits send it left, as absent_prediction does.
    absent = absent_prediction(active, xa)
    for row in range(len(xa)):
        assert walker.score(xa[row], {"platform": None, "guarantor": None})[0] == pytest.approx(absent.raw[row])
    with pytest.raises(ValueError, match="decision bits of 'platform'"):
        walker.score(xa[0], {"platform": b"\x00\x00", "guarantor": None})


def test_a_passive_party_may_rename_its_categories_at_scoring() -> None:
    active, platform, guarantor = _parts()
    xa, xp, xg = _x()
    bits = {"platform": platform.decisions(xp), "guarantor": guarantor.decisions(xg)}
    renamed = active.with_categories("platform", platform.categories({"z": "court"}))
    c = renamed.contributions(xa, bits)
    assert list(c.columns) == ["x0", "x1", "guarantor:guarantee", "platform:court", "platform:other", "bias"]
    assert np.allclose(c.sum(axis=1), active.predict_raw(xa, bits))
    assert active.trees[0][1].category == "tax"  # the trained part is unchanged
    with pytest.raises(ValueError, match="other nodes"):
        active.with_categories("platform", [{1: "court"}])


def test_decision_bits_survive_the_wire() -> None:
    _, platform, _ = _parts()
    dec = platform.decisions(np.arange(60, dtype=float).reshape(-1, 2))
    msg = wire.pack_decisions(dec, 30)
    back = wire.unpack_decisions(msg, 30)
    assert all(np.array_equal(back[0][n], dec[0][n]) for n in (1, 4))
    with pytest.raises(ValueError, match="rows"):
        wire.unpack_decisions(msg, 31)
    with pytest.raises(ValueError):
        wire.from_bits(np.zeros(2, dtype="uint8"), 30)


def test_parts_round_trip_through_their_files(tmp_path: Path) -> None:
    active, platform, guarantor = _parts()
    for name, part in (("a", active), ("p", platform), ("g", guarantor)):
        save_part(part, tmp_path / name)
        assert json.loads((tmp_path / name / "secureboost.json").read_text())["version"] == 1
        assert load_part(tmp_path / name) == part
    text = (tmp_path / "a" / "secureboost.json").read_text()
    assert '"z"' not in text and '"w"' not in text and '"v"' not in text  # no passive feature names at the bank


def test_older_engines_and_unknown_formats_ask_for_retraining(tmp_path: Path) -> None:
    old = tmp_path / "sgb_v"
    old.mkdir()
    (old / "split_tree.json").write_text("{}")
    with pytest.raises(SpecError, match="retrain") as err:
        load_part(old)
    assert RETRAIN_MESSAGE in str(err.value) and err.value.public == RETRAIN_MESSAGE
    _, platform, _ = _parts()
    save_part(platform, tmp_path / "v2")
    doc = json.loads((tmp_path / "v2" / "secureboost.json").read_text())
    (tmp_path / "v2" / "secureboost.json").write_text(json.dumps({**doc, "version": 2}))
    with pytest.raises(SpecError, match=RETRAIN_MESSAGE):
        load_part(tmp_path / "v2")
    with pytest.raises(NotFoundError):
        load_part(tmp_path / "nothing")
