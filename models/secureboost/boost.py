"""Boosting settings (from the job's ``SgbParams``) and the logistic loss in fixed point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.joint_train.params import SgbParams
from models.secureboost.binning import buckets_for
from models.secureboost.packing import FRAC_BITS, quantize

SCHEMES = {"ou": "OU", "paillier": "ZPaillier"}  # SgbParams.he -> HEU's SchemaType name
LABEL_ONLY_TREES = 1  # sgb_v's first_tree_with_label_holder_feature (its default, True)
ROUNDING_SEED = 20241  # seeds each tree's stochastic rounding of the gradients (packing.quantize)


@dataclass(frozen=True)
class Settings:
    """Training settings every party derives alike from the same ``SgbParams`` (all public)."""

    trees: int
    depth: int
    learning_rate: float
    reg_lambda: float
    gamma: float
    buckets: int
    schema: str  # HEU SchemaType name
    key_bits: int
    frac_bits: int = FRAC_BITS
    label_only_trees: int = LABEL_ONLY_TREES
    pack: bool = True  # Horner-pack bucket sums, several per ciphertext
    grouping: bool = True  # bucket sums through joint cells of feature groups
    ahead: bool = True  # the key raced in helper processes, encryptions of zero made ahead at idle priority

    @staticmethod
    def of(p: SgbParams, *, label_only_trees: int = LABEL_ONLY_TREES, pack: bool = True,
           grouping: bool = True, ahead: bool = True) -> Settings:  # fmt: skip
        """Validated settings; the keywords switch speed-ups off (tests) or change the label-only trees."""
        if p.he not in SCHEMES:
            raise ValueError(f"SecureBoost supports HE schemes {sorted(SCHEMES)}, not {p.he!r}")
        if p.num_boost_round < 1 or not 1 <= p.max_depth <= 16:
            raise ValueError(f"need num_boost_round >= 1 and max_depth in [1, 16], got {p.num_boost_round}, "
                             f"{p.max_depth}")  # fmt: skip
        if not 0.0 < p.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {p.learning_rate}")
        if p.reg_lambda < 0 or p.gamma < 0 or label_only_trees < 0:
            raise ValueError("reg_lambda, gamma and label_only_trees must be >= 0")
        if p.key_bits < 1024:
            raise ValueError(f"HE keys of {p.key_bits} bits are too short; use at least 1024 (2048 in production)")
        return Settings(p.num_boost_round, p.max_depth, p.learning_rate, p.reg_lambda, p.gamma,
                        buckets_for(p.sketch_eps), SCHEMES[p.he], p.key_bits, FRAC_BITS, label_only_trees, pack,
                        grouping, ahead)  # fmt: skip

    @property
    def scale(self) -> float:
        """Fixed-point scale 2**frac_bits."""
        return float(2**self.frac_bits)

    def with_passive(self, tree: int) -> bool:
        """Whether tree ``tree`` may split on passive parties' features."""
        return tree >= self.label_only_trees

    def summary(self) -> dict[str, float | int | str]:
        """What a saved model part records of how it was trained."""
        return {"trees": self.trees, "depth": self.depth, "learning_rate": self.learning_rate,
                "reg_lambda": self.reg_lambda, "gamma": self.gamma, "buckets": self.buckets,
                "he": self.schema, "key_bits": self.key_bits, "frac_bits": self.frac_bits,
                "label_only_trees": self.label_only_trees, "objective": "logistic", "base_score": 0.0}  # fmt: skip


def sigmoid(raw: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-raw))


def gradients(y: np.ndarray, raw: np.ndarray, frac_bits: int, tree: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantized logistic-loss gradient and hessian (int64) at raw scores ``raw``, for tree ``tree``.

    Rounded stochastically from a generator seeded by the tree (the same model every run).
    """
    p = sigmoid(raw)
    return quantize(p - y, p * (1.0 - p), frac_bits, np.random.default_rng((ROUNDING_SEED, tree)))


def node_depth(node: int) -> int:
    """Depth of a heap-numbered node (root 0, children 2n+1 and 2n+2)."""
    return (node + 1).bit_length() - 1


def smaller_child(node: int, n_left: int, n_right: int) -> int:
    """The child whose histogram is built (the other is parent minus it); ties go left."""
    return 2 * node + 1 if n_left <= n_right else 2 * node + 2
