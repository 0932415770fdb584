"""A score from every party's piece, for a table of firms (batch) or one firm (online).

Each non-label party computes its own piece at home: for a linear model its
partial log-odds and their sums per reporting category, for a tree model one
decision bit per own split node. The label owner adds its own part and turns
the pieces into raw scores (log-odds) and contributions: its own features by
name, the other parties' by ``"<party>:<category>"``, plus ``bias``. A firm a
party does not hold is scored as if all of that party's features were missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from enclave.data.schema import Schema
from models.linear import LinearPart, by_category, by_feature

NOT_HELD = -1  # a row position meaning "this party does not hold the firm"


def reporting_categories(schema: Schema, features: Sequence[str]) -> dict[str, str]:
    """Each feature's reporting category: its catalogue category, else its dataset's name."""
    return {c: schema.column(c).category or schema.name for c in features}


@dataclass(frozen=True)
class LinearPiece:
    """A non-label party's piece of a linear score for its aligned rows."""

    partial: np.ndarray  # its log-odds, one per aligned row
    categories: pd.DataFrame  # the same, summed per "<party>:<category>"
    absent: pd.DataFrame  # one row: its piece for a firm it does not hold

    def to_wire(self) -> dict[str, Any]:
        """Plain containers only: peers unpickle against an allow-list of classes."""
        return {"partial": self.partial, "categories": self.categories, "absent": self.absent}

    @staticmethod
    def from_wire(doc: Mapping[str, Any]) -> LinearPiece:
        return LinearPiece(np.asarray(doc["partial"], dtype="float64"), doc["categories"], doc["absent"])


def linear_piece(part: LinearPart, x: pd.DataFrame, categories: Mapping[str, str]) -> LinearPiece:
    """What a party sends the label owner for rows ``x`` (its encoded features)."""
    terms = part.terms(x)
    missing = pd.DataFrame([[np.nan] * x.shape[1]], columns=list(x.columns))
    return LinearPiece(
        terms.sum(axis=1).to_numpy(),
        by_category(terms, categories, part.party).reset_index(drop=True),
        by_category(part.terms(missing), categories, part.party).reset_index(drop=True),
    )


def linear_scores(own: LinearPart, x: pd.DataFrame, pos: np.ndarray, pieces: Sequence[LinearPiece]) -> Any:
    """Raw scores and contributions of the label owner's rows ``x``; ``pos[i]`` is row i's
    position among the aligned rows, or :data:`NOT_HELD`."""
    terms = by_feature(own.terms(x)).reset_index(drop=True)
    raw = terms.sum(axis=1).to_numpy() + (own.bias or 0.0)
    held = pos >= 0
    blocks = [terms]
    for piece in pieces:
        cols = piece.categories.columns.union(piece.absent.columns, sort=False)
        absent = piece.absent.reindex(columns=cols, fill_value=0.0).to_numpy()
        block = pd.DataFrame(np.repeat(absent, len(pos), axis=0), columns=cols)
        block.loc[held] = piece.categories.reindex(columns=cols, fill_value=0.0).iloc[pos[held]].to_numpy()
        raw = raw + np.where(held, np.asarray(piece.partial)[np.maximum(pos, 0)], absent.sum())
        blocks.append(block)
    contributions = pd.concat(blocks, axis=1)
    contributions["bias"] = own.bias or 0.0
    return raw, contributions


def tree_scores(model: Any, x: np.ndarray, pos: np.ndarray, prediction: Any) -> Any:
    """Raw scores and contributions of the label owner's rows ``x`` (prepared); rows every
    party holds come from the joint ``prediction``, the rest route other parties' splits
    as for missing values (left: the preparation's sentinel lies below every threshold)."""
    from models import secureboost

    absent = secureboost.absent_prediction(model, x)
    raw = np.asarray(absent.raw, dtype="float64").copy()
    if absent.contributions is None:
        raise ValueError("the label owner's part gave no contributions")
    contributions = absent.contributions.copy()
    held = pos >= 0
    if prediction is None or not held.any():
        return raw, contributions
    raw[held] = np.asarray(prediction.raw)[pos[held]]
    joint = prediction.contributions
    cols = contributions.columns.union(joint.columns, sort=False)
    contributions = contributions.reindex(columns=cols, fill_value=0.0)
    contributions.loc[held] = joint.reindex(columns=cols, fill_value=0.0).iloc[pos[held]].to_numpy()
    return raw, contributions
