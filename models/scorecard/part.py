"""Scoring with a saved scorecard: each party's part, and the label owner's sum of points.

A partner loads its split points and its encrypted point table, bins its own
rows (and one all-missing row, for firms it does not hold), and sends the
label owner its points summed per reporting category, re-randomised and
packed (:func:`points.category_sums`). The label owner adds its own features'
points and the base points. Contributions are in log-odds (``-points /
factor``), like every other model's, so reason codes work alike: a partner's
by ``"<party>:<category>"``, the label owner's own by feature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.scorecard import points as pts
from models.scorecard.bins import PartyBins
from models.scorecard.protocol import KEY_FILE, PK_FILE, POINTS, TABLE_FILE
from models.secureboost.he import KeyOwner
from models.secureboost.wire import Msg


def partner_sums(part: Path, x: np.ndarray) -> Msg:
    """At a partner: its rows' points per category, plus a last all-missing row (a firm it does not hold)."""
    bins = PartyBins.load(part)
    doc = json.loads((part / POINTS).read_text())
    table = {"ct": (part / TABLE_FILE).read_bytes(), "n_bins": doc["n_bins"], "layout": doc["layout"]}
    rows = np.vstack([np.asarray(x, dtype="float64"), np.full((1, len(bins.features)), np.nan)])
    order = sorted(set(doc["categories"]))
    return pts.category_sums(table, (part / PK_FILE).read_bytes(), bins.assign(rows), doc["categories"], order)


@dataclass(frozen=True)
class LabelPart:
    """The label owner's saved scorecard: its bins and points, the base, the partners' layouts, its key."""

    bins: PartyBins
    doc: dict[str, Any]
    party: str

    @staticmethod
    def load(part: Path, party: str) -> LabelPart:
        return LabelPart(PartyBins.load(part), json.loads((part / POINTS).read_text()), party)

    @property
    def scaling(self) -> pts.Scaling:
        return pts.Scaling(**self.doc["scaling"])

    def own_points(self, x: pd.DataFrame) -> pd.DataFrame:
        """Points per own feature for rows ``x`` (its encoded features, in the part's order)."""
        b = self.bins.assign(x[list(self.bins.features)].to_numpy(dtype="float64"))
        mine = [f for f in self.doc["features"] if f["party"] == self.party]
        return pd.DataFrame({f["feature"]: np.asarray(f["points"])[b[:, j]] for j, f in enumerate(mine)})

    def partner_points(self, key: KeyOwner, partner: str, reply: Msg, rows: int) -> pd.DataFrame:
        """A partner's points per category for its aligned rows and, last, for a firm it does not hold."""
        order = sorted({f["category"] for f in self.doc["features"] if f["party"] == partner})
        layout = list(self.doc["partners"][partner]["layout"])
        values = pts.open_sums(key, layout, reply, rows + 1, order)
        return pd.DataFrame(values, columns=[f"{partner}:{c}" for c in order])


def label_scores(lp: LabelPart, part: Path, x: pd.DataFrame, pos: np.ndarray, replies: dict[str, Msg],
                 aligned_rows: int) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:  # fmt: skip
    """(log-odds, contributions, points) of the label owner's rows ``x``; ``pos[i]`` is row i's position
    among the aligned rows (-1: a firm the partners do not hold, scored with their missing-value bins)."""
    points = lp.own_points(x).reset_index(drop=True)
    blocks = [points]
    key = KeyOwner.restore((part / PK_FILE).read_bytes(), (part / KEY_FILE).read_bytes())
    for partner, reply in sorted(replies.items()):
        theirs = lp.partner_points(key, partner, reply, aligned_rows)
        take = np.where(pos >= 0, pos, aligned_rows)  # the last row: the partner's all-missing firm
        blocks.append(theirs.iloc[take].reset_index(drop=True))
    per = pd.concat(blocks, axis=1)
    total = lp.doc["base_points"] + per.sum(axis=1).to_numpy()
    sc = lp.scaling
    contributions = -per / sc.factor
    contributions["bias"] = (sc.offset - lp.doc["base_points"]) / sc.factor
    return (sc.offset - total) / sc.factor, contributions, total
