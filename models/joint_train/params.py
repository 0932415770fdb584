"""Typed parameters of ``joint_train``: the split, the models and the reference.

Defaults live here once; the demo, ``data split`` and the API build their specs
from ``document_params`` so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from enclave.fields import Fields
from enclave.jobspec import JobSpec
from protocols.errors import SpecError

MODEL_KINDS = ("sgb", "sslr", "scorecard", "bank_only")
JOINT_KINDS = ("sgb", "sslr", "scorecard")  # models that span parties and are registered
BINNING_METHODS = ("quantile", "chimerge")
HE_SCHEMES = ("ou", "paillier")


@dataclass(frozen=True)
class SgbParams:
    num_boost_round: int = 40
    max_depth: int = 4
    learning_rate: float = 0.15
    reg_lambda: float = 1.0
    gamma: float = 0.0
    sketch_eps: float = 0.05
    he: str = "ou"
    key_bits: int = 2048


@dataclass(frozen=True)
class SslrParams:
    # 1,024 rows per step at rate 0.4 (the same rate per row as 512 at 0.2): half the CHEETAH
    # steps for the same model (demo city AUC 0.7927 against 0.7928; SS-LR 16 s against 25 s).
    epochs: int = 8
    learning_rate: float = 0.4
    batch_size: int = 1024
    l2_norm: float = 0.05


@dataclass(frozen=True)
class ScorecardParams:
    """Bins per feature, selection by IV, points scaling, and the SPU regression on WOE."""

    # ChiMerge to 5 groups and a low IV bar: on tens of thousands of rows a feature of IV 0.005-0.02
    # is still significant and adds to the card (UCI Taiwan: +0.004 AUC); lr 2 converges in 8 epochs.
    bins: int = 5
    method: str = "chimerge"
    monotone: bool = False
    iv_min: float = 0.005
    top_k: int = 0  # 0: every feature at or above iv_min
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    epochs: int = 8
    learning_rate: float = 2.0
    batch_size: int = 512
    l2_norm: float = 0.0
    he: str = "ou"
    key_bits: int = 2048
    uplift: bool = False  # held-out AUC of each platform category alone and left out (fitted alongside)
    max_corr: float = 0.0  # drop the weaker of two features correlated beyond this (0: off); on SPU shares
    max_vif: float = 0.0  # then drop features of variance inflation beyond this (0: off)


@dataclass(frozen=True)
class BankOnlyParams:
    """LightGBM inside the label owner's domain, same trees and depth as SGB."""


@dataclass(frozen=True)
class JointTrainParams:
    test_fraction: float = 0.3
    seed: int = 7
    sgb: SgbParams | None = None
    sslr: SslrParams | None = None
    scorecard: ScorecardParams | None = None
    bank_only: BankOnlyParams | None = None
    pooled_reference: bool = False

    @property
    def models(self) -> list[str]:
        return [k for k in MODEL_KINDS if getattr(self, k) is not None]

    @property
    def tree_params(self) -> SgbParams:
        """Trees, depth and bins shared by SecureBoost and its plaintext LightGBM twins."""
        return self.sgb or SgbParams()

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": {"test_fraction": self.test_fraction, "seed": self.seed},
            "models": {k: asdict(getattr(self, k)) for k in self.models},
            "reference": {"pooled": self.pooled_reference},
        }

    @staticmethod
    def of(spec: JobSpec) -> JointTrainParams:
        if not isinstance(spec.params, JointTrainParams):
            raise SpecError(f"job {spec.name!r} is a {spec.job_type!r} job, not joint_train")
        return spec.params


def _sgb(f: Fields) -> SgbParams:
    d = SgbParams()
    return SgbParams(
        num_boost_round=f.int_("num_boost_round", d.num_boost_round, 1, 1000),
        max_depth=f.int_("max_depth", d.max_depth, 1, 8),
        learning_rate=f.float_("learning_rate", d.learning_rate, 1e-4, 1.0),
        reg_lambda=f.float_("reg_lambda", d.reg_lambda, 0.0, 1e4),
        gamma=f.float_("gamma", d.gamma, 0.0, 1e4),
        sketch_eps=f.float_("sketch_eps", d.sketch_eps, 0.001, 0.5),
        he=f.choice("he", d.he, HE_SCHEMES),
        key_bits=f.int_("key_bits", d.key_bits, 1024, 4096),
    )


def _sslr(f: Fields) -> SslrParams:
    e = SslrParams()
    return SslrParams(
        epochs=f.int_("epochs", e.epochs, 1, 200),
        learning_rate=f.float_("learning_rate", e.learning_rate, 1e-5, 10.0),
        batch_size=f.int_("batch_size", e.batch_size, 1, 1 << 20),
        l2_norm=f.float_("l2_norm", e.l2_norm, 0.0, 100.0),
    )


def _scorecard(f: Fields) -> ScorecardParams:
    d = ScorecardParams()
    return ScorecardParams(
        bins=f.int_("bins", d.bins, 2, 50),
        method=f.choice("method", d.method, BINNING_METHODS),
        monotone=f.bool_("monotone", d.monotone),
        iv_min=f.float_("iv_min", d.iv_min, 0.0, 10.0),
        top_k=f.int_("top_k", d.top_k, 0, 10_000),
        base_score=f.float_("base_score", d.base_score, 0.0, 1e5),
        base_odds=f.float_("base_odds", d.base_odds, 1e-3, 1e6),
        pdo=f.float_("pdo", d.pdo, 1e-3, 1e4),
        epochs=f.int_("epochs", d.epochs, 1, 200),
        learning_rate=f.float_("learning_rate", d.learning_rate, 1e-5, 10.0),
        batch_size=f.int_("batch_size", d.batch_size, 1, 1 << 20),
        l2_norm=f.float_("l2_norm", d.l2_norm, 0.0, 100.0),
        he=f.choice("he", d.he, HE_SCHEMES),
        key_bits=f.int_("key_bits", d.key_bits, 1024, 4096),
        uplift=f.bool_("uplift", d.uplift),
        max_corr=f.float_("max_corr", d.max_corr, 0.0, 1.0),
        max_vif=f.float_("max_vif", d.max_vif, 0.0, 1e6),
    )


_PARSERS = {"sgb": _sgb, "sslr": _sslr, "scorecard": _scorecard, "bank_only": lambda f: BankOnlyParams()}


def parse(top: Fields) -> JointTrainParams:
    split = top.sub("split", {})
    test_fraction = split.float_("test_fraction", 0.3, 0.05, 0.9)
    seed = split.int_("seed", 7, 0, 2**31 - 1)
    split.done()
    models_f = top.sub("models", {"sgb": {}, "sslr": {}, "bank_only": {}})
    models: dict[str, Any] = {}
    for kind in list(models_f.raw):
        if kind not in MODEL_KINDS:
            raise SpecError(f"{models_f.where(str(kind))}: unknown model; expected some of {list(MODEL_KINDS)}")
        sub = models_f.sub(kind, {})
        models[kind] = _PARSERS[kind](sub)
        sub.done()
    models_f.done()
    if not any(k in models for k in JOINT_KINDS):
        raise SpecError(f"{top.source}: models: a joint job needs 'sgb', 'sslr' or 'scorecard'")
    ref = top.sub("reference", {})
    pooled = ref.bool_("pooled", False)
    ref.done()
    return JointTrainParams(test_fraction, seed, models.get("sgb"), models.get("sslr"), models.get("scorecard"),
                            models.get("bank_only"), pooled)  # fmt: skip


def document_params(
    *, trees: int = 25, depth: int = 4, seed: int = 7, pooled: bool = False, sslr: bool = True
) -> dict[str, Any]:
    """The spec keys of a joint_train job with the project's defaults."""
    models: dict[str, Any] = {"sgb": {**asdict(SgbParams()), "num_boost_round": trees, "max_depth": depth}}
    if sslr:
        models["sslr"] = asdict(SslrParams())
    models["bank_only"] = {}
    return {"split": {"test_fraction": 0.3, "seed": seed}, "models": models, "reference": {"pooled": pooled}}
