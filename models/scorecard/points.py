"""Scorecard points: the scaling, each party's point table, and scoring with a partner's encrypted table.

``score = offset - factor * (b0 + sum_f beta_f * WOE_f)`` with
``factor = pdo / ln 2`` and ``offset = base_score - factor * ln(base_odds)``:
at ``base_score`` the odds of good to bad are ``base_odds``, and every ``pdo``
points double them. The label owner holds the base points and its own
features' points; a partner's points, which the label owner computes from the
WOE only it knows, are encrypted under the label owner's key and kept by the
partner with its own split points. To score, the partner sums its rows' points
per reporting category under encryption, re-randomises and packs the sums; the
label owner decrypts them (range-checked) and adds its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.secureboost.he import Evaluator, KeyOwner
from models.secureboost.packing import Layout
from models.secureboost.wire import Msg

SCALE = 1 << 10  # points travel as integers at 2**-10


@dataclass(frozen=True)
class Scaling:
    base_score: float
    base_odds: float
    pdo: float

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def base_points(self, bias: float) -> float:
        return self.offset - self.factor * bias

    def feature_points(self, beta: float, woe: np.ndarray) -> np.ndarray:
        return -self.factor * beta * np.asarray(woe, dtype="float64")


def encrypt_table(he: KeyOwner, points: list[np.ndarray], categories: list[str]) -> Msg:
    """A partner's point table (one array of fine-bin points per feature), encrypted for it to keep.

    The layout bounds any per-category sum of one row's points, so packed sums never overflow.
    """
    fixed = [np.rint(np.asarray(p) * SCALE).astype("int64") for p in points]
    worst = {c: 0 for c in categories}
    for p, c in zip(fixed, categories, strict=True):
        worst[c] += int(np.abs(p).max(initial=0))
    layout = Layout.for_values(max(max(worst.values(), default=1), 1).bit_length() + 1, he.plaintext_bits())
    flat = np.concatenate(fixed) if fixed else np.zeros(0, dtype="int64")
    return {"pk": he.public_key(), "ct": he.encrypt_rows(flat.astype(object)), "n_bins": [len(p) for p in fixed],
            "layout": layout.to_wire()}  # fmt: skip


def category_sums(table: Msg, pk: bytes, bins: np.ndarray, categories: list[str], order: list[str]) -> Msg:
    """At the partner: each row's points summed per category in ``order``, re-randomised and packed."""
    n_bins = [int(b) for b in table["n_bins"]]
    if bins.ndim != 2 or bins.shape[1] != len(n_bins):
        raise ValueError(f"expected rows x {len(n_bins)} bins, got {bins.shape}")
    starts = np.concatenate([[0], np.cumsum(n_bins)[:-1]]).astype("int64")
    flat = bins + starts
    lists = [flat[r, [f for f, c in enumerate(categories) if c == cat]].tolist() for r in range(bins.shape[0])
             for cat in order]  # fmt: skip
    he = Evaluator(pk)
    he.load_rows(bytes(table["ct"]))
    layout = _layout(table["layout"])
    sums = he.rerandomise(he.select_sums(None, lists))
    return {"rows": bins.shape[0], "order": list(order), "packs": he.pack(sums, len(lists), layout)}


def open_sums(he: KeyOwner, table_layout: list[int], reply: Msg, rows: int, order: list[str]) -> np.ndarray:
    """At the label owner: the partner's points per row and category (rows x categories)."""
    if int(reply["rows"]) != rows or list(reply["order"]) != list(order):
        raise ValueError("the partner's point sums do not match the rows and categories asked for")
    values = he.open_packs(list(reply["packs"]), _layout(table_layout))
    if len(values) != rows * len(order):
        raise ValueError(f"the partner sent {len(values)} point sums for {rows} rows x {len(order)} categories")
    return np.asarray(values, dtype="float64").reshape(rows, len(order)) / SCALE


def _layout(wire: list[int]) -> Layout:
    values = [int(v) for v in wire]
    if len(values) != 4 or values[2] < 3 or values[3] < 1:
        raise ValueError(f"malformed point layout {wire!r}")
    return Layout(*values)
