"""SecureBoost in SecretFlow production mode: one PYU per party, every party running the same calls.

A PYU call runs only in its owner's process; ``.to(pyu)`` moves its result (a
plain message, see :mod:`models.secureboost.wire`) over SecretFlow's
cross-silo link. Each party's state lives in this process's own objects, so
nothing leaves a party but those messages. The order of calls is
:mod:`models.secureboost.schedule`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from models.joint_train.params import SgbParams
from models.secureboost import schedule
from models.secureboost.active import ActiveParty
from models.secureboost.boost import Settings
from models.secureboost.model import ActivePart, PassivePart, Prediction
from models.secureboost.passive import PassiveParty

__all__ = ["Prediction", "SecretFlowNet", "predict", "train"]


class SecretFlowNet:
    """:class:`schedule.Net` over SecretFlow PYUs (production mode)."""

    def __init__(self, pyus: Mapping[str, Any]) -> None:
        self.pyus = pyus

    def run(self, party: str, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pyus[party](fn, num_returns=1)(*args)

    def send(self, value: Any, party: str) -> Any:
        return value.to(self.pyus[party])

    def wait(self, values: list[Any]) -> None:
        import secretflow as sf

        sf.wait(values)


def _passive(pyus: Mapping[str, Any], label_party: str, me: str) -> list[str]:
    """The passive parties in name order (the order their features are scanned in), after checks."""
    if label_party not in pyus or me not in pyus:
        raise ValueError(f"{label_party!r} and {me!r} must both be among the parties {sorted(pyus)}")
    passive = sorted(p for p in pyus if p != label_party)
    if not passive:
        raise ValueError("SecureBoost needs at least one party besides the label owner")
    return passive


def train(pyus: Mapping[str, Any], label_party: str, me: str, params: SgbParams, features: list[str],
          x: np.ndarray, y: np.ndarray | None, categories: Mapping[str, str] | None = None,
          progress: Callable[[int, int], None] | None = None) -> ActivePart | PassivePart:  # fmt: skip
    """Train; every party's process calls this with the same ``pyus``, ``label_party`` and ``params``.

    ``x`` (prepared: no NaN), ``features`` and ``categories`` (feature ->
    reporting category; a passive party sends the label owner the category
    of each of its split nodes, never the feature) are this process's own;
    ``y`` only at the label owner. ``progress(tree, trees)`` is called in this
    process as each tree is finished here. Returns this party's model part.
    """
    passive = _passive(pyus, label_party, me)
    settings = Settings.of(params)
    x = np.asarray(x)
    if (y is None) == (me == label_party):
        raise ValueError("the label owner, and only it, passes y")

    def create(party: str) -> schedule.Role:
        if party != me:  # a call of another party never runs here
            raise RuntimeError(f"{me!r} was asked to act as {party!r}")
        if me == label_party:
            return ActiveParty(me, features, x, np.asarray(y), settings, passive, progress)
        return PassiveParty(me, features, x, settings, categories, progress)

    parts = schedule.train(SecretFlowNet(pyus), label_party, passive, settings, create)
    return parts[me]


def predict(pyus: Mapping[str, Any], label_party: str, me: str, part: ActivePart | PassivePart,
            x: np.ndarray, contributions: bool = False,
            categories: Mapping[str, str] | None = None) -> Prediction | None:  # fmt: skip
    """Score this party's rows for the aligned keys (same order at every party); every party calls it.

    ``x`` is prepared with the part's own saved preparation. Passive parties
    send their decision bits (one per row per own split node) to the label
    owner, which gets the :class:`Prediction` (raw scores and, with
    ``contributions``, Saabas contributions per row); every other party gets
    None. A passive party passing ``categories`` (feature -> reporting
    category) sends its split nodes' current categories along, which then name
    its contribution columns instead of those recorded in training; the label
    owner's ``categories`` are not used.
    """
    passive = _passive(pyus, label_party, me)
    expected = ActivePart if me == label_party else PassivePart
    if not isinstance(part, expected) or part.party != me:
        raise ValueError(f"{me!r} must score with its own {expected.__name__}, got {type(part).__name__} "
                         f"of {part.party!r}")  # fmt: skip
    cats = {me: categories} if categories is not None else None
    out = schedule.predict(SecretFlowNet(pyus), label_party, passive, {me: part}, {me: np.asarray(x)}, contributions,
                           cats)  # fmt: skip
    return out.get(me)
