"""Typed parameters of ``joint_binning``: how each party bins and how features are selected by IV."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from enclave.fields import Fields
from enclave.jobspec import JobSpec
from models.joint_train.params import BINNING_METHODS, HE_SCHEMES, ScorecardParams
from protocols.errors import SpecError

_CARD = ScorecardParams()  # one set of binning defaults for this job and the scorecard


@dataclass(frozen=True)
class BinningParams:
    bins: int = _CARD.bins
    method: str = _CARD.method
    monotone: bool = _CARD.monotone
    iv_min: float = _CARD.iv_min
    top_k: int = _CARD.top_k  # 0: every feature at or above iv_min
    he: str = _CARD.he
    key_bits: int = _CARD.key_bits

    def to_dict(self) -> dict[str, Any]:
        return {"binning": asdict(self)}

    @staticmethod
    def of(spec: JobSpec) -> BinningParams:
        if not isinstance(spec.params, BinningParams):
            raise SpecError(f"job {spec.name!r} is a {spec.job_type!r} job, not joint_binning")
        return spec.params


def parse(top: Fields) -> BinningParams:
    f = top.sub("binning", {})
    d = BinningParams()
    out = BinningParams(
        bins=f.int_("bins", d.bins, 2, 50),
        method=f.choice("method", d.method, BINNING_METHODS),
        monotone=f.bool_("monotone", d.monotone),
        iv_min=f.float_("iv_min", d.iv_min, 0.0, 10.0),
        top_k=f.int_("top_k", d.top_k, 0, 10_000),
        he=f.choice("he", d.he, HE_SCHEMES),
        key_bits=f.int_("key_bits", d.key_bits, 1024, 4096),
    )
    f.done()
    return out
