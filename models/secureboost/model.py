"""Each party's SecureBoost model part, prediction routing, Saabas contributions, files.

Nodes use heap numbering: root 0, children ``2n + 1`` (left) and ``2n + 2``
(right); a split sends a row left when ``x < threshold``.

* The label owner's part (:class:`ActivePart`) holds every tree's structure:
  each node's value (the weight it would have as a leaf; a leaf's value is its
  weight), which party owns each split, the feature and threshold of its own
  splits, and for a passive party's split only that party's reporting
  category. It never holds a passive party's feature names or thresholds.
* A passive party's part (:class:`PassivePart`) holds its own splits only:
  node -> (feature, threshold). No weights, no other party's splits.

Each part is one JSON file, ``secureboost.json``, with a format version; a
directory holding anything else (``sgb_v``'s files, another version) is refused
with :data:`RETRAIN_MESSAGE`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enclave.files import write_json
from models.secureboost.wire import Decisions
from protocols.errors import NotFoundError, SpecError

FILE = "secureboost.json"
FORMAT = "safehouse-secureboost"
VERSION = 1
SGB_V_FILES = ("common.json", "leaf_weight.json", "split_tree.json")
RETRAIN_MESSAGE = ("this SecureBoost model part was saved by an older engine or in an unknown format; "
                   "retrain the model with this version of Safehouse")  # fmt: skip
BIAS = "bias"
DEFAULT_CATEGORY = "other"  # the reporting category of a feature the caller's mapping leaves out
Paths = dict[int, tuple[np.ndarray, np.ndarray]]  # split node -> (rows passing it, the child each goes to)


@dataclass
class Node:
    """The label owner's record of one node."""

    value: float
    owner: str | None = None  # the party owning the split; None for a leaf
    feature: str | None = None  # the label owner's own splits only
    threshold: float | None = None  # the label owner's own splits only
    category: str | None = None  # a passive party's splits only: its reporting category

    @property
    def is_leaf(self) -> bool:
        """A node without a split."""
        return self.owner is None

    def to_dict(self) -> dict[str, Any]:
        """The node's set fields (JSON-ready)."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Prediction:
    """What prediction gives the label owner: raw scores (log-odds) and optional reason codes."""

    raw: np.ndarray
    contributions: pd.DataFrame | None = None


@dataclass
class ActivePart:
    """The label owner's model part."""

    party: str
    features: list[str]
    base_score: float = 0.0
    trees: list[dict[int, Node]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def predict_raw(self, x_own: np.ndarray, bits_by_party: Mapping[str, Decisions]) -> np.ndarray:
        """Raw scores of rows given the label owner's columns and every passive party's decision bits."""
        x_own = self._checked(x_own)
        out = np.full(x_own.shape[0], self.base_score, dtype="float64")
        for t in range(len(self.trees)):
            pos = np.zeros(x_own.shape[0], dtype="int64")
            for at, child in self._paths(x_own, bits_by_party, t).values():
                pos[at] = child
            out += self._values(t)[pos]
        return out

    def contributions(self, x_own: np.ndarray, bits_by_party: Mapping[str, Decisions]) -> pd.DataFrame:
        """Saabas contributions per row; each row sums to its raw score.

        A split moves a row from its node's value to its child's value; the change
        goes to the label owner's feature, or to the passive owner's column
        ``"<party>:<category>"`` (summed over that party's splits of the
        category). ``bias`` holds the base score plus every tree's root value.
        """
        x_own = self._checked(x_own)
        columns = [*self.features, *self.passive_columns(), BIAS]
        if len(set(columns)) != len(columns):
            raise ValueError(f"contribution columns collide: {columns}")
        index = {c: i for i, c in enumerate(columns)}
        out = np.zeros((x_own.shape[0], len(columns)))
        out[:, index[BIAS]] = self.base_score
        for t, nodes in enumerate(self.trees):
            values = self._values(t)
            out[:, index[BIAS]] += values[0]
            for n, (at, child) in self._paths(x_own, bits_by_party, t).items():
                node = nodes[n]
                key = str(node.feature) if node.owner == self.party else f"{node.owner}:{node.category}"
                out[at, index[key]] += values[child] - values[n]  # rows at a node are distinct
        return pd.DataFrame(out, columns=columns)

    def passive_columns(self) -> list[str]:
        """The ``"<party>:<category>"`` columns of passive parties' splits, sorted."""
        return sorted({f"{n.owner}:{n.category}" for t in self.trees for n in t.values()
                       if n.owner is not None and n.owner != self.party})  # fmt: skip

    def passive_parties(self) -> list[str]:
        """The passive parties owning at least one split, sorted."""
        return sorted({n.owner for t in self.trees for n in t.values() if n.owner not in (None, self.party)})

    def passive_nodes(self, party: str) -> list[set[int]]:
        """Per tree, the nodes split by ``party``."""
        return [{n for n, node in t.items() if node.owner == party} for t in self.trees]

    def with_categories(self, party: str, per_tree: list[dict[int, str]]) -> ActivePart:
        """A copy whose splits by ``party`` carry the categories it sent now (it may regroup its features)."""
        if [set(t) for t in per_tree] != self.passive_nodes(party):
            raise ValueError(f"{party!r} sent categories for other nodes than its splits")
        if not all(isinstance(c, str) and 0 < len(c) <= 200 for t in per_tree for c in t.values()):
            raise ValueError(f"{party!r} sent a malformed category")
        trees = [{n: replace(node, category=cats.get(n, node.category)) for n, node in nodes.items()}
                 for nodes, cats in zip(self.trees, per_tree, strict=True)]  # fmt: skip
        return replace(self, trees=trees)

    def _checked(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} columns of {self.party}'s features, got {x.shape}")
        return x

    def _values(self, tree: int) -> np.ndarray:
        nodes = self.trees[tree]
        values = np.zeros(max(nodes) + 1)
        for n, node in nodes.items():
            values[n] = node.value
        return values

    def _paths(self, x: np.ndarray, bits: Mapping[str, Decisions], tree: int) -> Paths:
        """For every split node of a tree: the rows passing it and the child each goes to."""
        nodes = self.trees[tree]
        pos = np.zeros(x.shape[0], dtype="int64")
        out: Paths = {}
        for n in sorted(nodes):
            node = nodes[n]
            if node.is_leaf:
                continue
            at = np.flatnonzero(pos == n)
            if node.owner == self.party:
                left = x[at, self.features.index(str(node.feature))] < float(node.threshold)  # type: ignore[arg-type]
            else:
                left = _passive_bits(bits, str(node.owner), tree, n, x.shape[0])[at]
            out[n] = (at, np.where(left, 2 * n + 1, 2 * n + 2))
            pos[at] = out[n][1]
        return out


_LEAF, _OWN, _PASSIVE = 0, 1, 2


@dataclass(frozen=True)
class RowWalker:
    """One row at a time in plain Python, for online scoring: on one row, a walk down each tree
    costs less than the vectorised calls of :meth:`ActivePart.contributions`, and it holds the
    interpreter for microseconds, not milliseconds, so concurrent calls do not queue on it.

    Gives the same contributions (same columns, bias aside, added in the same order) and a raw
    score equal to their sum plus ``bias`` (to rounding: the batch path sums in another order).
    """

    columns: tuple[str, ...]  # contribution columns, as ActivePart.contributions without "bias"
    bias: float  # base score plus every tree's root value
    # Per tree, node -> (kind, feature index or passive party, threshold or bit index, column).
    trees: tuple[dict[int, tuple[int, Any, Any, int]], ...]
    values: tuple[dict[int, float], ...]
    bit_counts: Mapping[str, int]  # passive party -> its split nodes, all trees

    @staticmethod
    def of(part: ActivePart) -> RowWalker:
        columns = (*part.features, *part.passive_columns())
        index = {c: i for i, c in enumerate(columns)}
        counts: dict[str, int] = {}
        trees = []
        for nodes in part.trees:
            walk: dict[int, tuple[int, Any, Any, int]] = {}
            for n in sorted(nodes):  # the order flat decision bits follow
                node = nodes[n]
                if node.is_leaf:
                    walk[n] = (_LEAF, None, None, -1)
                elif node.owner == part.party:
                    walk[n] = (_OWN, part.features.index(str(node.feature)), float(node.threshold),  # type: ignore[arg-type]
                               index[str(node.feature)])  # fmt: skip
                else:
                    owner = str(node.owner)
                    walk[n] = (_PASSIVE, owner, counts.get(owner, 0), index[f"{owner}:{node.category}"])
                    counts[owner] = counts.get(owner, 0) + 1
            trees.append(walk)
        values = tuple({n: float(node.value) for n, node in nodes.items()} for nodes in part.trees)
        bias = float(part.base_score) + sum(v[0] for v in values)
        return RowWalker(columns, bias, tuple(trees), values, counts)

    def score(self, x_row: Sequence[float], flat_bits: Mapping[str, bytes | None]) -> tuple[float, list[float]]:
        """Raw score and contributions of one row; ``flat_bits[party]`` is that party's packed
        decisions (tree order, nodes ascending) or None for a row it does not hold (left, as missing)."""
        bits = {p: self._unpack(p, flat_bits.get(p)) for p in self.bit_counts}
        x = [float(v) for v in x_row]
        out = [0.0] * len(self.columns)
        for walk, values in zip(self.trees, self.values, strict=True):
            n = 0
            while True:
                kind, a, b, col = walk[n]
                if kind == _LEAF:
                    break
                left = x[a] < b if kind == _OWN else bits[a][b]
                child = 2 * n + 1 if left else 2 * n + 2
                out[col] += values[child] - values[n]
                n = child
        return self.bias + sum(out), out

    def _unpack(self, party: str, data: bytes | None) -> list[bool]:
        count = self.bit_counts[party]
        if data is None:
            return [True] * count
        if len(data) != (count + 7) // 8:
            raise ValueError(f"decision bits of {party!r}: {len(data)} bytes for {count} split nodes")
        return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count).astype(bool).tolist()


def absent_prediction(part: ActivePart | PassivePart, x_own: np.ndarray) -> Prediction:
    """Scores and contributions of rows the passive parties do not hold, computed by the label owner alone.

    Each passive split sends such a row left, as it sends a missing value:
    ``TreePrep``'s sentinel lies below the owner's training minimum, hence below
    every threshold it can split at.
    """
    if not isinstance(part, ActivePart):
        raise TypeError("only the label owner's part scores rows on its own")
    rows = np.asarray(x_own).shape[0]
    bits = {p: [{n: np.ones(rows, dtype=bool) for n in nodes} for nodes in part.passive_nodes(p)]
            for p in part.passive_parties()}  # fmt: skip
    return Prediction(part.predict_raw(x_own, bits), part.contributions(x_own, bits))


def _passive_bits(bits: Mapping[str, Decisions], party: str, tree: int, node: int, rows: int) -> np.ndarray:
    found = bits.get(party)
    if found is None or tree >= len(found) or node not in found[tree]:
        raise ValueError(f"no decision bits from {party!r} for tree {tree}, node {node}")
    b = np.asarray(found[tree][node], dtype=bool)
    if b.shape != (rows,):
        raise ValueError(f"{party!r} sent decision bits for {b.shape} rows, expected {rows}")
    return b


@dataclass
class PassivePart:
    """A passive party's model part: its own splits only."""

    party: str
    features: list[str]
    trees: list[dict[int, tuple[str, float]]] = field(default_factory=list)

    def decisions(self, x: np.ndarray) -> Decisions:
        """Per tree, per own split node: True where the row goes left."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} columns of {self.party}'s features, got {x.shape}")
        col = {f: i for i, f in enumerate(self.features)}
        return [{n: x[:, col[f]] < thr for n, (f, thr) in t.items()} for t in self.trees]

    def categories(self, mapping: Mapping[str, str]) -> list[dict[int, str]]:
        """Per tree, each own split node's reporting category under ``mapping`` (feature -> category)."""
        return [{n: str(mapping.get(f) or DEFAULT_CATEGORY) for n, (f, _) in t.items()} for t in self.trees]


def _active_dict(part: ActivePart) -> dict[str, Any]:
    trees = [{str(n): node.to_dict() for n, node in t.items()} for t in part.trees]
    return {"role": "active", "party": part.party, "features": part.features, "base_score": part.base_score,
            "params": part.params, "trees": trees}  # fmt: skip


def _passive_dict(part: PassivePart) -> dict[str, Any]:
    trees = [{str(n): [f, thr] for n, (f, thr) in t.items()} for t in part.trees]
    return {"role": "passive", "party": part.party, "features": part.features, "trees": trees}


def save_part(part: ActivePart | PassivePart, directory: Path) -> None:
    """Write ``directory/secureboost.json``: this party's part, with the format and its version."""
    body = _active_dict(part) if isinstance(part, ActivePart) else _passive_dict(part)
    write_json(Path(directory) / FILE, {"format": FORMAT, "version": VERSION, **body})


def _retrain(directory: Path, why: str) -> SpecError:
    return SpecError(f"{RETRAIN_MESSAGE} ({directory}: {why})", public=RETRAIN_MESSAGE)


def load_part(directory: Path) -> ActivePart | PassivePart:
    """Read a part :func:`save_part` wrote; refuse older engines' and unknown formats with a retrain message."""
    directory = Path(directory)
    path = directory / FILE
    if not path.is_file():
        if any((directory / f).is_file() for f in SGB_V_FILES):
            raise _retrain(directory, "it holds SecretFlow sgb_v files")
        if directory.is_dir() and any(directory.iterdir()):
            raise _retrain(directory, f"it holds no {FILE}")
        raise NotFoundError(f"no SecureBoost model part in {directory}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _retrain(directory, f"{FILE} is not readable JSON ({type(e).__name__})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        found = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else type(doc).__name__
        raise _retrain(directory, f"format {found!r}, this engine reads ({FORMAT!r}, {VERSION})")
    try:
        return _from_dict(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise SpecError(f"{path}: malformed SecureBoost model part ({type(e).__name__}: {e})",
                        public="malformed SecureBoost model part") from e  # fmt: skip


def _from_dict(doc: dict[str, Any]) -> ActivePart | PassivePart:
    party, features = str(doc["party"]), [str(f) for f in doc["features"]]
    if doc["role"] == "active":
        trees = [{int(n): Node(**v) for n, v in t.items()} for t in doc["trees"]]
        return ActivePart(party, features, float(doc["base_score"]), trees, dict(doc["params"]))
    if doc["role"] == "passive":
        own = [{int(n): (str(v[0]), float(v[1])) for n, v in t.items()} for t in doc["trees"]]
        unknown = {f for t in own for f, _ in t.values()} - set(features)
        if unknown:
            raise ValueError(f"splits on features the part does not list: {sorted(unknown)}")
        return PassivePart(party, features, own)
    raise ValueError(f"unknown role {doc['role']!r}")
