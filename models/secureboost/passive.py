"""A passive party's side of training: encrypted bucket sums and its own splits.

It holds features only. Per tree it receives every row's encrypted (g, h) once,
then per level it partitions the nodes the label owner assigns to its own
splits, learns the membership of the nodes split elsewhere, and returns packed
encrypted bucket sums of the smaller child of every split (the label owner
derives the sibling). Its model part keeps only its own splits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from models.secureboost import grouping, wire
from models.secureboost import histogram as hg
from models.secureboost.binning import BinMapper
from models.secureboost.boost import Settings, node_depth, smaller_child
from models.secureboost.he import Evaluator
from models.secureboost.model import DEFAULT_CATEGORY, PassivePart
from models.secureboost.packing import Layout
from models.secureboost.wire import Msg

Progress = Callable[[int, int], None]
_Lists = tuple[np.ndarray, list[list[int]], list[list[int]]]


class PassiveParty:
    """A party with features only, evaluating under the label owner's public key."""

    def __init__(self, name: str, features: list[str], x: np.ndarray, settings: Settings,
                 categories: Mapping[str, str] | None = None, progress: Progress | None = None) -> None:  # fmt: skip
        if x.ndim != 2 or x.shape[1] != len(features) or not features:
            raise ValueError(f"a passive party needs one or more features matching x's columns, got {x.shape}")
        if len(set(features)) != len(features):
            raise ValueError("feature names must be unique")
        cats = categories or {}  # may name more columns than this party's features (a whole catalogue)
        self.name, self.settings, self.progress = name, settings, progress
        self.features = list(features)
        self.category = [str(cats.get(f) or DEFAULT_CATEGORY) for f in features]
        self.binner = BinMapper.fit(x, settings.buckets)
        self.bins = self.binner.transform(x)
        self.width = self.binner.width
        self.trees: list[dict[int, tuple[str, float]]] = []
        self.he: Evaluator | None = None
        self.layout: Layout | None = None
        self.rows: dict[int, np.ndarray] = {}
        self._root: _Lists | None = None

    def setup(self, msg: Msg) -> Msg:
        """Load the public key and the layout; announce bucket counts per feature."""
        if int(msg["rows"]) != self.bins.shape[0]:
            raise ValueError(f"the label owner has {msg['rows']} rows, this party {self.bins.shape[0]}: align first")
        self.layout = Layout.of(list(msg["layout"]))
        self.he = Evaluator(bytes(msg["pk"]))
        return {"n_bins": self.binner.n_bins}

    def begin_tree(self, msg: Msg) -> Msg:
        """Load the tree's row ciphertexts; return the root's packed bucket sums."""
        t = int(msg["tree"])
        self._pad(t)
        self.trees.append({})
        he = self._he()
        he.load_rows(bytes(msg["ct"]))
        if int(he.rows.rows) != self.bins.shape[0]:
            raise ValueError(f"received {he.rows.rows} row ciphertexts for {self.bins.shape[0]} rows")
        self.rows = {0: np.arange(self.bins.shape[0])}
        return {"hists": self._hists([0])}

    def on_decisions(self, msg: Msg) -> Msg:
        """Partition the nodes assigned to own splits; apply memberships sent along; return sums."""
        level = int(msg["level"])
        partitions: dict[int, np.ndarray] = {}
        categories: dict[int, str] = {}
        split: list[int] = []
        for n, f, b in wire.splits(msg).tolist():
            rows = self._node_rows(n, level)
            if not (0 <= f < len(self.features) and 0 <= b < int(self.binner.n_bins[f]) - 1):
                raise ValueError(f"split ({f}, {b}) is outside this party's features or buckets")
            left = self.bins[rows, f] <= b
            self.trees[-1][n] = (self.features[f], self.binner.threshold(f, b))
            partitions[n], categories[n] = wire.to_bits(left), self.category[f]
            self._set_children(n, left)
            split.append(n)
        split += self._apply(wire.node_bits(msg, "left"), level)
        out: Msg = {"partitions": partitions, "categories": categories}
        out |= self._children_hists(split, level)
        if level == self.settings.depth - 1 and self.progress is not None:
            self.progress(len(self.trees), self.settings.trees)
        return out

    def on_memberships(self, msg: Msg) -> Msg:
        """Apply the memberships of splits made elsewhere; return the sums of their smaller children."""
        level = int(msg["level"])
        return self._children_hists(self._apply(wire.node_bits(msg, "left"), level), level)

    def finish(self) -> PassivePart:
        """This party's model part (own splits only)."""
        self._pad(self.settings.trees)
        return PassivePart(self.name, self.features, self.trees)

    def _pad(self, tree: int) -> None:
        """Empty trees for the label-only trees before ``tree``; they count as done."""
        while len(self.trees) < tree:
            self.trees.append({})
            if self.progress is not None:
                self.progress(len(self.trees), self.settings.trees)

    def _he(self) -> Evaluator:
        if self.he is None or self.layout is None:
            raise RuntimeError("setup() first")
        return self.he

    def _node_rows(self, node: int, level: int) -> np.ndarray:
        if node not in self.rows or node_depth(node) != level:
            raise ValueError(f"node {node} is not a node of level {level} this party knows")
        return self.rows[node]

    def _set_children(self, node: int, left: np.ndarray) -> None:
        rows = self.rows[node]
        self.rows[2 * node + 1], self.rows[2 * node + 2] = rows[left], rows[~left]

    def _apply(self, memberships: dict[int, np.ndarray], level: int) -> list[int]:
        for n, bits in memberships.items():
            self._set_children(n, wire.from_bits(bits, len(self._node_rows(n, level))))
        return list(memberships)

    def _children_hists(self, split: list[int], level: int) -> Msg:
        """Sums of the smaller child of each split node, if the children can still split."""
        if not split or level + 1 >= self.settings.depth:
            return {}
        built = [smaller_child(n, len(self.rows[2 * n + 1]), len(self.rows[2 * n + 2])) for n in split]
        return {"hists": self._hists(sorted(built))}

    def _hists(self, nodes: list[int]) -> Msg:
        """Encrypted bucket sums of ``nodes``, packed level-wide.

        Per node only the non-empty buckets but each feature's last are sent.
        Rows go into joint cells of feature groups (one batch call for all the
        nodes), cells into the sent buckets (one call), buckets into packs.
        """
        masks: list[np.ndarray] = []
        cell_lists: list[list[int]] = []
        slot_lists: list[list[int]] = []
        for node in nodes:
            mask_bits, cells, slots = self._node_lists(node)
            masks.append(mask_bits)
            offset = len(cell_lists)
            cell_lists.extend(cells)
            slot_lists.extend([i + offset for i in lst] for lst in slots)
        packs: list[tuple[bytes, int, int]] = []
        if slot_lists:
            he, layout = self._he(), self.layout
            sums = he.select_sums(he.select_sums(None, cell_lists), slot_lists)
            packs = he.pack(sums, len(slot_lists), layout, self.settings.pack)  # type: ignore[arg-type]
        return {"nodes": [int(n) for n in nodes], "masks": masks, "packs": packs}

    def _node_lists(self, node: int) -> _Lists:
        """A node's packed non-empty mask, cell index lists and slot-from-cells lists.

        The root's are the same every tree (same rows, same bins): computed once.
        """
        if node == 0 and self._root is not None:
            return self._root
        rows = self.rows[node]
        mask = hg.nonempty(self.bins, rows, self.width)
        slots = hg.sent_slots(mask)
        cells: list[list[int]] = []
        sums: list[list[int]] = []
        if len(slots):
            groups = grouping.plan(self.bins[rows], self.width, self.settings.grouping)
            cells = [c for g in groups for c in grouping.cell_rows(g, rows)]
            sums = grouping.slot_cells(groups, slots)
        out = (wire.to_bits(mask.ravel()), cells, sums)
        if node == 0:
            self._root = out
        return out
