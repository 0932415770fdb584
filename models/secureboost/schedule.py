"""The order of SecureBoost's calls and messages, independent of the transport.

Every party's process runs the same schedule. ``Net.run(party, fn, *args)``
executes ``fn`` only at ``party`` (elsewhere it is a handle) and
``Net.send(value, party)`` moves a result there; :mod:`models.secureboost.protocol`
implements them with SecretFlow PYUs, tests with direct calls. Every call at a
party depends on that party's previous one, so each party's calls run in order.
First the passive parties bin their features while the label owner bins its
own and gets its key pair; each passive party then loads the public key and
announces its bucket counts, which the label owner takes with the first
passive tree's sums (it encrypts that tree's rows meanwhile). Per tree, with
``m`` passive parties::

    A.begin_tree                  A -> every P: the rows' (g, h), encrypted once
    P.begin_tree                  P -> A: the root's packed bucket sums
    A.ingest + A.decide           A -> each P: the level's splits that P owns (+ with m = 1, the
                                               memberships of A's own splits)
    per level:
      P.on_decisions              P -> A: partitions and categories of its splits, sums of the
                                          smaller children it can already build
      with m >= 2, below the last level (one more round trip):
        A.ingest + A.relay        A -> each P: memberships of the splits P does not own
        P.on_memberships          P -> A: sums of those splits' smaller children
      A.ingest + A.decide         (the next level), or A.ingest + A.end_tree after the last

Label-only trees (the first, as in ``sgb_v``) grow at the label owner alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from models.secureboost import wire
from models.secureboost.active import ActiveParty
from models.secureboost.boost import Settings
from models.secureboost.model import ActivePart, PassivePart, Prediction
from models.secureboost.passive import PassiveParty
from models.secureboost.wire import Msg

Role = ActiveParty | PassiveParty


class Net(Protocol):
    """Where calls run and how their results move between parties."""

    def run(self, party: str, fn: Callable[..., Any], *args: Any) -> Any: ...
    def send(self, value: Any, party: str) -> Any: ...
    def wait(self, values: list[Any]) -> None: ...


def _to(net: Net, values: Mapping[str, Any], party: str) -> dict[str, Any]:
    return {p: net.send(v, party) for p, v in values.items()}


class _Run:
    """One process's view of a training run: its own roles, and the calls every process issues alike."""

    def __init__(self, net: Net, label: str, passive: list[str], settings: Settings) -> None:
        self.net, self.label, self.passive, self.settings = net, label, passive, settings
        self.roles: dict[str, Any] = {}  # filled only by calls that run in this process

    def at_label(self, step: Callable[..., Any], *args: Any) -> Any:
        """``step(label_owner_role, *args)`` at the label owner."""
        return self.net.run(self.label, lambda *a: step(self.roles[self.label], *a), *args)

    def to_passive(self, msgs: Any, step: Callable[[PassiveParty, Msg], Msg]) -> dict[str, Any]:
        """Hand each passive party its own entry of the label owner's ``msgs``; run ``step`` on it there."""
        out = {}
        for p in self.passive:
            mine = self.net.send(self.net.run(self.label, lambda m, p=p: m[p], msgs), p)
            out[p] = self.net.run(p, lambda m, p=p: step(self.roles[p], m), mine)
        return out

    def replies(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The passive parties' replies, moved to the label owner."""
        return _to(self.net, values, self.label)

    def tree(self, t: int, token: Any, last: Mapping[str, Any],
             setup: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any]]:  # fmt: skip
        """One tree with the passive parties; returns the label owner's token and their last replies.

        ``last`` are the passive parties' previous replies (their calls follow
        them); ``setup``, for the first such tree only, their setup replies,
        which the label owner takes after encrypting, before the sums.
        """
        ct = self.at_label(lambda a, _: a.begin_tree(t), token)
        last = {p: self.net.run(p, lambda m, _, p=p: self.roles[p].begin_tree(m), self.net.send(ct, p), last[p])
                for p in self.passive}  # fmt: skip
        extra = [self.replies(setup)] if setup is not None else []
        msgs = self.at_label(_ingest_then(False, ActiveParty.decide), self.replies(last), *extra)
        relay = len(self.passive) > 1
        for level in range(self.settings.depth):
            last = self.to_passive(msgs, PassiveParty.on_decisions)
            if level == self.settings.depth - 1:
                return self.at_label(_ingest_then(True, ActiveParty.end_tree), self.replies(last)), last
            if relay:
                msgs = self.at_label(_ingest_then(True, ActiveParty.relay), self.replies(last))
                last = self.to_passive(msgs, PassiveParty.on_memberships)
            msgs = self.at_label(_ingest_then(not relay, ActiveParty.decide), self.replies(last))
        raise ValueError("depth must be >= 1")


def _ingest_then(partitions: bool, step: Callable[[ActiveParty], Any]) -> Callable[..., Any]:
    def run(a: ActiveParty, replies: Mapping[str, Msg], *setup: Mapping[str, Msg]) -> Any:
        for s in setup:  # the passive parties' setup replies, with the first tree's sums
            a.on_setup(s)
        a.ingest(replies, partitions)
        return step(a)

    return run


def train(net: Net, label: str, passive: list[str], settings: Settings,
          create: Callable[[str], Role]) -> dict[str, ActivePart | PassivePart]:  # fmt: skip
    """Run training; returns the parts of the parties this process plays (``create`` builds a role there)."""
    run = _Run(net, label, passive, settings)
    parts: dict[str, ActivePart | PassivePart] = {}

    def init(party: str, *msg: Msg) -> Msg:
        if party not in run.roles:
            run.roles[party] = create(party)
        return run.roles[party].setup(*msg)

    def make(party: str) -> None:
        run.roles[party] = create(party)

    try:
        made = {p: net.run(p, make, p) for p in passive}  # passive parties bin while the label owner makes its key
        setup = net.run(label, init, label)
        last = {p: net.run(p, lambda m, _, p=p: init(p, m), net.send(setup, p), made[p]) for p in passive}
        pending: dict[str, Any] | None = last  # the setup replies, taken with the first passive tree's sums
        token = setup
        for t in range(settings.trees):
            if settings.with_passive(t):
                token, last = run.tree(t, token, last, pending)
                pending = None
            else:
                token = run.at_label(lambda a, _, t=t: a.grow_local(t), token)
        if pending is not None:  # no tree used a passive party
            token = run.at_label(lambda a, r, _: a.on_setup(r), run.replies(pending), token)
        done = [run.at_label(lambda a, _: parts.__setitem__(label, a.part()), token)]
        done += [net.run(p, lambda _, p=p: parts.__setitem__(p, run.roles[p].finish()), last[p]) for p in passive]
        net.wait(done)
    finally:  # a failed run stops the label owner's HE helper too
        for role in run.roles.values():
            if isinstance(role, ActiveParty):
                role.close()
    return parts


def predict(net: Net, label: str, passive: list[str], parts: Mapping[str, ActivePart | PassivePart],
            xs: Mapping[str, np.ndarray], contributions: bool,
            categories: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Prediction]:  # fmt: skip
    """Score rows: each passive party sends its decision bits, the label owner routes the rows.

    ``parts``, ``xs`` and ``categories`` hold the parts, rows and (optionally)
    current reporting categories of the parties this process plays; a passive
    party given categories sends each own split node's category along, which
    then names its contribution columns. The result holds the prediction if
    this process plays the label owner.
    """
    out: dict[str, Prediction] = {}

    def bits(p: str) -> Msg:
        part, x = parts[p], xs[p]
        if not isinstance(part, PassivePart):
            raise TypeError(f"{p!r} holds no passive SecureBoost part")
        msg = wire.pack_decisions(part.decisions(x), x.shape[0])
        mapping = (categories or {}).get(p)
        return msg if mapping is None else msg | {"categories": part.categories(mapping)}

    def score(sent: Mapping[str, Msg]) -> None:
        part, x = parts[label], xs[label]
        if not isinstance(part, ActivePart):
            raise TypeError(f"{label!r} holds no label-owner SecureBoost part")
        by_party = {p: wire.unpack_decisions(sent[p], x.shape[0]) for p in passive}
        for p in passive:
            if "categories" in sent[p]:
                part = part.with_categories(p, wire.node_categories(sent[p]))
        frame = part.contributions(x, by_party) if contributions else None
        out[label] = Prediction(part.predict_raw(x, by_party), frame)

    sent = {p: net.send(net.run(p, bits, p), label) for p in passive}
    net.wait([net.run(label, score, sent)])
    return out
