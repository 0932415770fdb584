"""SecureBoost equals an independent plaintext reimplementation on the same bins.

The reference below shares only the binning with the engine: it grows each
tree level by level on pooled columns, scanning every candidate split with
plain loops (no histograms, subtraction, packing, messages or HE). The engine
runs in one process here, with real HEU and every message pickled and read back
through the workers' allow-listed unpickler, for two and three parties.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from models.joint_train.params import SgbParams
from models.secureboost import schedule
from models.secureboost.active import ActiveParty
from models.secureboost.binning import BinMapper, buckets_for
from models.secureboost.boost import Settings
from models.secureboost.model import ActivePart, PassivePart
from models.secureboost.passive import PassiveParty
from parties.worker.hardening import loads

SCALE = 2.0**12  # the engine's fixed point (packing.FRAC_BITS), written out: the reference shares no code with it
SEED = 20241  # the engine's stochastic rounding seed per tree (boost.ROUNDING_SEED)


@dataclass
class Reference:
    """Trees over column blocks (block 0: the label owner's): splits (block, feature, threshold) and node values."""

    splits: list[dict[int, tuple[int, int, float]]] = field(default_factory=list)
    values: list[dict[int, float]] = field(default_factory=list)

    def predict(self, blocks: list[np.ndarray]) -> np.ndarray:
        n = blocks[0].shape[0]
        out = np.zeros(n)
        for splits, values in zip(self.splits, self.values, strict=True):
            for i in range(n):
                node = 0
                while node in splits:
                    b, f, thr = splits[node]
                    node = 2 * node + 1 if blocks[b][i, f] < thr else 2 * node + 2
                out[i] += values[node]
        return out


def _obj(g: float, h: float, lam: float) -> float:
    return g * g / (h + lam) if h + lam > 0 else 0.0


def _best_split(bins: list[np.ndarray], n_bins: list[np.ndarray], rows: np.ndarray, g: np.ndarray, h: np.ndarray,
                allowed: int, lam: float) -> tuple[float, int, int, int] | None:  # fmt: skip
    """(gain, block, feature, bucket) of the best candidate; the first wins ties."""
    gt, ht = int(g[rows].sum()) / SCALE, int(h[rows].sum()) / SCALE
    top: tuple[float, int, int, int] | None = None
    for b in range(allowed):
        for f in range(bins[b].shape[1]):
            col = bins[b][rows, f]
            gl = hl = 0
            for k in range(int(n_bins[b][f]) - 1):
                gl += int(g[rows[col == k]].sum())
                hl += int(h[rows[col == k]].sum())
                left, right = _obj(gl / SCALE, hl / SCALE, lam), _obj(gt - gl / SCALE, ht - hl / SCALE, lam)
                gain = left + right - _obj(gt, ht, lam)
                if top is None or gain > top[0]:
                    top = (gain, b, f, k)
    return top


def reference_boost(blocks: list[np.ndarray], y: np.ndarray, p: SgbParams, label_only: int = 1) -> Reference:
    """Boosting as sgb_v defines it (logistic loss), in the engine's fixed point 2**-12 rounded
    stochastically as it is (a generator per tree; g's draws, then h's), on pooled blocks."""
    mappers = [BinMapper.fit(x, buckets_for(p.sketch_eps)) for x in blocks]
    bins = [m.transform(x) for m, x in zip(mappers, blocks, strict=True)]
    raw, model = np.zeros(len(y)), Reference()
    for t in range(p.num_boost_round):
        prob = 1.0 / (1.0 + np.exp(-raw))
        rng = np.random.default_rng((SEED, t))
        g = np.floor(np.clip(prob - y, -1, 1) * SCALE + rng.random(len(y))).astype("int64")
        h = np.floor(np.clip(prob * (1 - prob), 0, 0.25) * SCALE + rng.random(len(y))).astype("int64")
        splits: dict[int, tuple[int, int, float]] = {}
        values: dict[int, float] = {}
        frontier = {0: np.arange(len(y))}
        for depth in range(p.max_depth + 1):
            grown = {}
            for node, rows in sorted(frontier.items()):
                gs, hs = int(g[rows].sum()) / SCALE, int(h[rows].sum()) / SCALE
                values[node] = 0.0 if hs == 0 else -gs / (hs + p.reg_lambda) * p.learning_rate
                found = None
                if depth < p.max_depth:
                    allowed = 1 if t < label_only else len(blocks)
                    found = _best_split(bins, [m.n_bins for m in mappers], rows, g, h, allowed, p.reg_lambda)
                if found is None or not found[0] > p.gamma:
                    raw[rows] += values[node]
                    continue
                _, b, f, k = found
                splits[node] = (b, f, mappers[b].threshold(f, k))
                left = bins[b][rows, f] <= k
                grown[2 * node + 1], grown[2 * node + 2] = rows[left], rows[~left]
            frontier = grown
        model.splits.append(splits)
        model.values.append(values)
    return model


def synthetic(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Three column blocks (bank, then two passive parties) and a label that depends on all of them."""
    rng = np.random.default_rng(seed)
    bank = np.column_stack([rng.normal(size=n), rng.integers(0, 3, n)])
    p1 = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.exponential(size=n)])
    p2 = np.column_stack([rng.integers(0, 5, n), rng.lognormal(size=n)])
    logit = 0.6 * bank[:, 0] - 1.2 * p1[:, 0] + 0.8 * p1[:, 1] - 0.5 * p2[:, 0] + 0.7 * np.log(p2[:, 1])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return [b.astype("float32") for b in (bank, p1, p2)], y


class LocalNet:
    """Every party in this process; each message goes through pickling and the workers' allow-list."""

    def run(self, party: str, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def send(self, value: Any, party: str) -> Any:
        return loads(pickle.dumps(value))

    def wait(self, values: list[Any]) -> None:
        pass


NAMES = {"bank": ["b_x", "b_cat"], "platform": ["p_x", "p_flag", "p_amt"], "guarantor": ["g_cat", "g_amt"]}
CATEGORIES = {"p_x": "tax", "p_flag": "tax", "p_amt": "court", "g_cat": "guarantee"}


def run_local(parties: list[str], blocks: list[np.ndarray], y: np.ndarray, p: SgbParams,
              **options: Any) -> dict[str, ActivePart | PassivePart]:  # fmt: skip
    settings = Settings.of(p, **options)
    data = dict(zip(parties, blocks, strict=True))

    def create(party: str) -> schedule.Role:
        if party == "bank":
            return ActiveParty(party, NAMES[party], data[party], y, settings, parties[1:])
        return PassiveParty(party, NAMES[party], data[party], settings, CATEGORIES)

    return schedule.train(LocalNet(), "bank", parties[1:], settings, create)


CASES = [
    (["bank", "platform"], SgbParams(num_boost_round=4, max_depth=4, sketch_eps=0.1, key_bits=1024), {}),
    (["bank", "platform", "guarantor"], SgbParams(num_boost_round=4, max_depth=3, sketch_eps=0.1, key_bits=1024), {}),
    (["bank", "platform", "guarantor"], SgbParams(num_boost_round=3, max_depth=2, key_bits=1024, he="paillier"), {}),
    (["bank", "platform"], SgbParams(num_boost_round=3, max_depth=3, key_bits=1024, reg_lambda=0.0),
     {"pack": False, "grouping": False}),
    (["bank", "platform", "guarantor"], SgbParams(num_boost_round=2, max_depth=1, key_bits=1024, gamma=0.5), {}),
    (["bank", "platform", "guarantor"], SgbParams(num_boost_round=2, max_depth=3, key_bits=1024),
     {"label_only_trees": 0}),
]  # fmt: skip


@pytest.mark.parametrize(("parties", "params", "options"), CASES)
def test_secure_training_equals_the_plaintext_reference(parties: list[str], params: SgbParams,
                                                        options: dict[str, Any]) -> None:  # fmt: skip
    blocks, y = synthetic(500, seed=3)
    blocks = blocks[: len(parties)]
    parts = run_local(parties, blocks, y, params, **options)
    ref = reference_boost(blocks, y, params, options.get("label_only_trees", 1))
    test_blocks, _ = synthetic(200, seed=4)
    test_blocks = test_blocks[: len(parties)]
    xs = dict(zip(parties, test_blocks, strict=True))
    renamed = {p: {f: "renamed" for f in NAMES[p]} for p in parties[2:]}  # a guarantor regrouping its features
    got = schedule.predict(LocalNet(), "bank", parties[1:], parts, xs, True, renamed)["bank"]
    assert np.abs(got.raw - ref.predict(test_blocks)).max() < 1e-9
    active = parts["bank"]
    assert isinstance(active, ActivePart)
    owners = [{n: parties[s[n][0]] if n in s else None for n in v} for s, v in zip(ref.splits, ref.values, strict=True)]
    assert [{n: node.owner for n, node in t.items()} for t in active.trees] == owners
    assert all(np.isclose(node.value, v[n], rtol=0, atol=1e-12) for t, v in zip(active.trees, ref.values, strict=True)
               for n, node in t.items())  # fmt: skip
    assert got.contributions is not None
    assert np.allclose(got.contributions.sum(axis=1), got.raw, atol=1e-12)
    for i, party in enumerate(parties[1:], start=1):
        part = parts[party]
        assert isinstance(part, PassivePart) and part.features == NAMES[party]
        own = {(t, n) for t, s in enumerate(ref.splits) for n, (b, _, _) in s.items() if b == i}
        assert {(t, n) for t, tree in enumerate(part.trees) for n in tree} == own
        assert all(f in NAMES[party] for tree in part.trees for f, _ in tree.values())
    guarantor = {c for c in got.contributions.columns if c.startswith("guarantor:")}
    assert guarantor == ({"guarantor:renamed"} if "guarantor" in active.passive_parties() else set())
    text = repr(active)
    assert not any(f in text for party in parties[1:] for f in NAMES[party])


def test_several_passive_parties_do_split() -> None:
    """The three-party case really uses both passive parties (else the equality above proves little)."""
    blocks, y = synthetic(500, seed=3)
    parts = run_local(["bank", "platform", "guarantor"], blocks, y, CASES[1][1])
    active = parts["bank"]
    assert isinstance(active, ActivePart)
    owners = {n.owner for t in active.trees for n in t.values() if n.owner}
    assert owners == {"bank", "platform", "guarantor"}
    assert set(active.passive_columns()) <= {"platform:tax", "platform:court", "guarantor:guarantee", "guarantor:other"}


class Tampering(LocalNet):
    """A passive party that replaces its first packed sums with a ciphertext of a number beyond the slots."""

    def __init__(self) -> None:
        self.public_key: bytes | None = None
        self.tampered = False

    def send(self, value: Any, party: str) -> Any:
        out = super().send(value, party)
        if isinstance(out, dict) and "pk" in out:
            self.public_key = out["pk"]
        if party == "bank" and isinstance(out, dict) and out.get("hists", {}).get("packs") and not self.tampered:
            from heu import numpy as hnp
            from heu import phe

            kit = hnp.setup(phe.PublicKey.load_from(self.public_key))
            huge = kit.array(np.array([[1 << 200]], dtype=object), phe.BigintEncoderParams())
            out["hists"]["packs"][0] = (bytes(kit.encryptor().encrypt(huge).serialize()), 1, 1)
            self.tampered = True
        return out


def test_out_of_range_sums_are_refused() -> None:
    """OU's plaintext-overflow attack (a scaled ciphertext past the slots) trips the label owner's range check."""
    blocks, y = synthetic(300, seed=5)
    p = SgbParams(num_boost_round=2, max_depth=2, key_bits=1024)
    settings = Settings.of(p)

    def create(party: str) -> schedule.Role:
        if party == "bank":
            return ActiveParty(party, NAMES[party], blocks[0], y, settings, ["platform"])
        return PassiveParty(party, NAMES[party], blocks[1], settings)

    with pytest.raises(RuntimeError, match=r"BitCount"):
        schedule.train(Tampering(), "bank", ["platform"], settings, create)
