"""Typed parameters of ``joint_score``: which registered model, how many reasons, and
(for monitoring) when a firm raises an alert."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from enclave.fields import Fields
from enclave.jobspec import JobSpec
from models.scoring import BAND_NAMES
from protocols.errors import SpecError

KINDS = ("sgb", "sslr", "scorecard")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and what its manifest says of its parts."""

    name: str
    version: str
    kind: str
    job_id: str  # the training job whose parts every party keeps
    parts: dict[str, str]  # party -> sha256 of its part

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonitorParams:
    threshold_band: str = "D"  # a firm crossing into this band or a worse one raises an alert
    band_moves: int = 2  # ... as does a move of this many bands either way


@dataclass(frozen=True)
class JointScoreParams:
    model: ModelRef
    reasons: int = 3
    monitor: MonitorParams | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model.to_dict(), "reasons": self.reasons}
        if self.monitor is not None:
            out["monitor"] = asdict(self.monitor)
        return out

    @staticmethod
    def of(spec: JobSpec) -> JointScoreParams:
        if not isinstance(spec.params, JointScoreParams):
            raise SpecError(f"job {spec.name!r} is a {spec.job_type!r} job, not joint_score")
        return spec.params


def parse(top: Fields) -> JointScoreParams:
    m = top.sub("model")
    parts_f = m.sub("parts")
    parts = {str(p): parts_f.str_(str(p)) for p in list(parts_f.raw)}
    parts_f.done()
    job_id = m.str_("job_id")
    if len(job_id) > 64 or not set(job_id) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise SpecError(f"{m.where('job_id')}: {job_id!r} is not a job id")
    ref = ModelRef(m.str_("name"), str(m.get("version")), m.choice("kind", None, KINDS), job_id, parts)
    m.done()
    reasons = top.int_("reasons", 3, 1, 10)
    monitor = None
    if top.has("monitor"):
        f = top.sub("monitor")
        monitor = MonitorParams(f.choice("threshold_band", "D", BAND_NAMES), f.int_("band_moves", 2, 1, 5))
        f.done()
    return JointScoreParams(ref, reasons, monitor)
