"""The label owner's side of training: labels, the secret key, every split decision.

Per tree it encrypts each row's (g, h) once and sends the ciphertexts to every
passive party. Per level it decrypts the passive parties' packed bucket sums
(one batch per reply), derives each larger sibling as parent minus the smaller
child in plaintext, builds its own features' histograms in plaintext (the
smaller sibling's; the other is parent minus it), and picks
each node's best split over all parties' features (its own block first, then
the passive parties' in name order; ties go to the first). It tells a passive
party only the (feature, bucket) of that party's own winning splits and the
memberships it needs; it records a passive split's owner and reporting
category, never its feature name or threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from models.secureboost import histogram as hg
from models.secureboost import wire
from models.secureboost.binning import BinMapper
from models.secureboost.boost import Settings, gradients, node_depth
from models.secureboost.he import Ahead, KeyOwner
from models.secureboost.model import ActivePart, Node
from models.secureboost.packing import Layout, row_plaintexts, split_pair
from models.secureboost.split import Candidate, best, node_weight
from models.secureboost.wire import Msg

Progress = Callable[[int, int], None]


@dataclass
class _Tree:
    """The label owner's state while one tree grows."""

    index: int
    with_passive: bool
    g: np.ndarray
    h: np.ndarray
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    nodes: dict[int, Node] = field(default_factory=dict)
    level: list[int] = field(default_factory=list)  # the nodes to decide next
    depth: int = 0  # their depth
    pending: dict[int, str] = field(default_factory=dict)  # passive splits awaiting their partition
    split_bits: dict[int, tuple[str, np.ndarray]] = field(default_factory=dict)  # this level's memberships
    hists: dict[str, dict[int, hg.Hist]] = field(default_factory=dict)  # per passive party, per node
    received: dict[str, dict[int, hg.Hist]] = field(default_factory=dict)
    own: dict[int, hg.Hist] = field(default_factory=dict)  # the label owner's own histograms, per node


class ActiveParty:
    """The label owner: labels, its own features, the secret key."""

    def __init__(self, name: str, features: list[str], x: np.ndarray, y: np.ndarray, settings: Settings,
                 passive: list[str], progress: Progress | None = None) -> None:  # fmt: skip
        y = np.asarray(y, dtype="float64").ravel()
        if x.ndim != 2 or x.shape != (len(y), len(features)) or len(y) == 0:
            raise ValueError(f"x must be rows x {len(features)} features matching {len(y)} labels, got {x.shape}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("the label must be 0/1")
        if len(set(features)) != len(features):
            raise ValueError("feature names must be unique")
        if not passive or name in passive or len(set(passive)) != len(passive):
            raise ValueError(f"need one or more passive parties other than {name!r}, got {passive}")
        self.name, self.settings, self.progress = name, settings, progress
        self.features, self.passive, self.y = list(features), sorted(passive), y
        # the key's helpers start first: they race for the key while this process bins its features
        ahead = Ahead(settings.schema, settings.key_bits, len(y)) if settings.ahead else None
        try:
            self.binner = BinMapper.fit(x, settings.buckets)
            self.bins = self.binner.transform(x)
        except BaseException:
            if ahead is not None:
                ahead.close()
            raise
        self.raw = np.zeros(len(y))
        self.he = KeyOwner(settings.schema, settings.key_bits, ahead=ahead)
        self.layout = Layout.for_rows(len(y), self.he.plaintext_bits(), settings.frac_bits)
        self.peers: dict[str, np.ndarray] = {}  # bucket counts per feature of each passive party
        self.trees: list[dict[int, Node]] = []
        self.tree: _Tree | None = None

    def setup(self) -> Msg:
        """The public key, the row count and the plaintext layout, for every passive party."""
        return {"pk": self.he.public_key(), "rows": len(self.y), "layout": self.layout.to_wire()}

    def on_setup(self, replies: Mapping[str, Msg]) -> None:
        """Record each passive party's bucket counts per feature."""
        for p in self.passive:
            n_bins = np.asarray(replies[p]["n_bins"])
            if n_bins.ndim != 1 or len(n_bins) == 0 or n_bins.min() < 1 or n_bins.max() > self.settings.buckets + 1:
                raise ValueError(f"{p!r} announced malformed bucket counts")
            self.peers[p] = n_bins.astype("int64")

    def grow_local(self, t: int) -> None:
        """A tree on the label owner's own features only (no message)."""
        self._start(t, with_passive=False)
        for _ in range(self.settings.depth):
            self.decide()
        self.end_tree()

    def begin_tree(self, t: int) -> Msg:
        """Gradients at the current scores, encrypted once per row for every passive party."""
        tree = self._start(t, with_passive=True)
        return {"tree": t, "ct": self.he.encrypt_rows(row_plaintexts(tree.g, tree.h, self.layout))}

    def ingest(self, replies: Mapping[str, Msg], partitions: bool) -> None:
        """Take the passive parties' replies: partitions and categories of their splits, bucket sums."""
        tree = self._current()
        for p in self.passive:
            reply = replies[p]
            if partitions:
                self._partitions(tree, p, reply)
            if "hists" in reply:
                self._decode(tree, p, reply["hists"])
        if partitions and tree.pending:
            raise ValueError(f"no partition came for passive splits at nodes {sorted(tree.pending)}")
        tree.level.sort()

    def relay(self) -> dict[str, Msg]:
        """Per passive party: the memberships of this level's splits it does not own."""
        tree = self._current()
        return {p: {"level": tree.depth - 1, "left": {n: bits for n, (owner, bits) in tree.split_bits.items()
                                                      if owner != p}} for p in self.passive}  # fmt: skip

    def decide(self) -> dict[str, Msg]:
        """Split or close every node of the level; per passive party, its own splits (and memberships)."""
        tree, s = self._current(), self.settings
        msgs: dict[str, Msg] = {p: {"level": tree.depth, "splits": []} for p in self.passive}
        nodes, tree.level, tree.split_bits = tree.level, [], {}
        for n in nodes:
            cand = self._best(tree, n)
            if cand is None or not cand.gain > s.gamma:
                continue
            if cand.block == 0:
                left = self.bins[tree.rows[n], cand.feature] <= cand.bucket
                tree.nodes[n].owner, tree.nodes[n].feature = self.name, self.features[cand.feature]
                tree.nodes[n].threshold = self.binner.threshold(cand.feature, cand.bucket)
                tree.split_bits[n] = (self.name, wire.to_bits(left))
                self._set_children(tree, n, left)
            else:
                owner = self.passive[cand.block - 1]
                tree.nodes[n].owner, tree.pending[n] = owner, owner
                msgs[owner]["splits"].append([n, cand.feature, cand.bucket])
        tree.depth += 1
        for msg in msgs.values():
            msg["splits"] = np.array(msg["splits"], dtype="int64").reshape(-1, 3)
            if len(self.passive) == 1 and tree.depth < s.depth:  # no relay round: send own splits' memberships now
                msg["left"] = {n: bits for n, (_, bits) in tree.split_bits.items()}
        return msgs if tree.with_passive else {}

    def end_tree(self) -> None:
        """Leaves' values update every row's score; the tree joins the model."""
        tree = self._current()
        for n, node in tree.nodes.items():
            if node.is_leaf:
                self.raw[tree.rows[n]] += node.value
        self.trees.append(tree.nodes)
        self.tree = None
        if self.progress is not None:
            self.progress(len(self.trees), self.settings.trees)

    def part(self) -> ActivePart:
        """The label owner's model part (training is over: the HE helper stops)."""
        self.close()
        return ActivePart(self.name, self.features, 0.0, self.trees, self.settings.summary())

    def close(self) -> None:
        """Stop the HE helper process (idempotent)."""
        self.he.close()

    def _start(self, t: int, with_passive: bool) -> _Tree:
        if t != len(self.trees) or self.tree is not None:
            raise RuntimeError(f"tree {t} out of order")
        g, h = gradients(self.y, self.raw, self.settings.frac_bits, tree=t)
        tree = _Tree(t, with_passive, g, h, level=[0])
        tree.rows[0] = np.arange(len(self.y))
        tree.nodes[0] = self._node(tree, 0)
        tree.hists = {p: {} for p in self.passive}
        tree.received = {p: {} for p in self.passive}
        self.tree = tree
        return tree

    def _current(self) -> _Tree:
        if self.tree is None:
            raise RuntimeError("no tree in progress")
        return self.tree

    def _totals(self, tree: _Tree, n: int) -> tuple[int, int]:
        rows = tree.rows[n]
        return int(tree.g[rows].sum()), int(tree.h[rows].sum())

    def _node(self, tree: _Tree, n: int) -> Node:
        g, h = self._totals(tree, n)
        s = self.settings
        return Node(node_weight(g, h, s.scale, s.reg_lambda, s.learning_rate))

    def _set_children(self, tree: _Tree, n: int, left: np.ndarray) -> None:
        rows = tree.rows[n]
        for c, part in ((2 * n + 1, rows[left]), (2 * n + 2, rows[~left])):
            tree.rows[c] = part
            tree.nodes[c] = self._node(tree, c)
            tree.level.append(c)

    def _best(self, tree: _Tree, n: int) -> Candidate | None:
        blocks = [(self._own_hist(tree, n), self.binner.n_bins)]
        if tree.with_passive:
            blocks += [(self._passive_hist(tree, p, n), self.peers[p]) for p in self.passive]
        return best(blocks, self._totals(tree, n), self.settings.scale, self.settings.reg_lambda)

    def _own_hist(self, tree: _Tree, n: int) -> hg.Hist:
        """The label owner's histogram of node ``n``: built for the smaller of two siblings, parent minus it
        for the other (integer sums: the same arrays either way)."""
        if n in tree.own:
            return tree.own[n]
        sibling, parent = n + 1 if n % 2 == 1 else n - 1, (n - 1) // 2
        if n > 0 and parent in tree.own and sibling in tree.rows:
            smaller = min((len(tree.rows[c]), c) for c in (n, sibling))[1]
            if smaller != n:
                tree.own[n] = tree.own[parent] - self._own_hist(tree, sibling)
                return tree.own[n]
        tree.own[n] = hg.build(self.bins, tree.rows[n], tree.g, tree.h, self.binner.width)
        return tree.own[n]

    def _passive_hist(self, tree: _Tree, p: str, n: int) -> hg.Hist:
        """A passive party's histogram of node ``n``: received, or parent minus the received sibling."""
        got = tree.received[p]
        if n in got:
            hist = got[n]
        else:
            sibling = n + 1 if n % 2 == 1 else n - 1
            if n == 0 or sibling not in got:
                raise ValueError(f"{p!r} sent bucket sums for neither node {n} nor its sibling")
            hist = tree.hists[p][(n - 1) // 2] - got[sibling]
        tree.hists[p][n] = hist
        return hist

    def _partitions(self, tree: _Tree, p: str, reply: Msg) -> None:
        cats = reply.get("categories", {})
        for n, bits in wire.node_bits(reply, "partitions").items():
            if tree.pending.get(n) != p:
                raise ValueError(f"{p!r} sent a partition for node {n}, which it was not asked to split")
            category = cats.get(n)
            if not isinstance(category, str) or not 0 < len(category) <= 200:
                raise ValueError(f"{p!r} sent no valid category for node {n}")
            left = wire.from_bits(bits, len(tree.rows[n]))
            del tree.pending[n]
            tree.nodes[n].category = category
            tree.split_bits[n] = (p, bits)
            self._set_children(tree, n, left)

    def _decode(self, tree: _Tree, p: str, sent: Msg) -> None:
        """Decrypt and unpack a passive party's sums; complete each node's histogram with its totals."""
        n_bins = self.peers[p]
        shape = (len(n_bins), int(n_bins.max()))
        values = [split_pair(v, self.layout) for v in self.he.open_packs(sent["packs"], self.layout)]
        at = 0
        for n, mask_bits in zip(sent["nodes"], sent["masks"], strict=True):
            if n not in tree.rows or node_depth(n) != tree.depth or n in tree.received[p]:
                raise ValueError(f"{p!r} sent bucket sums for node {n}, which is not awaited")
            mask = wire.from_bits(mask_bits, shape[0] * shape[1]).reshape(shape)
            slots = hg.sent_slots(mask)
            part = values[at : at + len(slots)]
            at += len(slots)
            g = np.array([a for a, _ in part], dtype="int64")
            h = np.array([b for _, b in part], dtype="int64")
            tree.received[p][n] = hg.complete(mask, slots, g, h, self._totals(tree, n))
        if at != len(values):
            raise ValueError(f"{p!r} sent {len(values)} bucket sums; its masks announce {at}")
