"""The description of ``joint_score``: score a table of firms (purpose ``scoring``) or watch a
loan book (purpose ``monitoring``) with a registered joint model.

Every party's node checks that it still holds its part of the model, unaltered
(its hash must match the registered manifest's). Per-firm results (the scores
table, the alerts table) stay with the label owner; only counts, score bands,
AUC/KS and the population stability index leave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enclave.controls.gate import Declared
from enclave.fields import Fields
from enclave.files import sha256_dir
from enclave.jobspec import JobSpec
from models.jobtype import Devices, JobType, csv_rows
from models.joint_score import params as P
from models.part import PartRecord
from models.profile import CSI_WARNING
from models.scoring import PSI_WARNING
from protocols.errors import RefusedError, SpecError
from protocols.messages import Outputs

STAGE_PSI = "psi"
STAGE_SCORE = "score"
STAGE_MONITOR = "monitor"
STAGE_SAVE = "save"
PURPOSES = ("scoring", "monitoring")
CSI_TABLE, CSI_PLOT = "csi.csv", "csi.png"
SCORES = "scores.parquet"
ALERTS = "alerts.parquet"


def part_dir(models_root: Path, model: P.ModelRef) -> Path:
    """Where a party keeps its part of a trained model (written by the training job)."""
    return models_root / model.job_id / model.kind


class JointScore(JobType):
    name = "joint_score"
    title = "scoring and monitoring with a joint model"
    stages = (STAGE_PSI, STAGE_SCORE, STAGE_MONITOR, STAGE_SAVE)
    outputs = (
        Declared("score_bands.json", "score_bands", "application/json"),
        Declared("score_bands.png", "plots", "image/png"),
        # Each party's features' stability against its training profile (indices only).
        Declared(CSI_TABLE, "metrics", "text/csv"),
        Declared(CSI_PLOT, "plots", "image/png"),
        Declared(SCORES, "scores", "application/vnd.apache.parquet", per_firm=True),
        Declared(ALERTS, "alerts", "application/vnd.apache.parquet", per_firm=True),
    )
    program = "models.joint_score.program:run"

    def parse_params(self, top: Fields) -> P.JointScoreParams:
        return P.parse(top)

    def validate(self, spec: JobSpec) -> None:
        p = P.JointScoreParams.of(spec)
        if spec.purpose not in PURPOSES:
            raise SpecError(f"purpose: a scoring job's purpose is one of {list(PURPOSES)}, not {spec.purpose!r}")
        if (spec.purpose == "monitoring") != (p.monitor is not None):
            raise SpecError("monitor: a monitoring job has a monitor section, and only a monitoring job")
        missing = [n for n in spec.party_names if n not in p.model.parts]
        if missing:
            raise SpecError(f"model.parts: the model has no part for {missing}")
        if len(spec.parties) > 3:
            raise SpecError(f"parties: joint_score runs with two or three parties, not {len(spec.parties)}")

    def check_party(self, spec: JobSpec, party: str, party_root: Path) -> None:
        model = P.JointScoreParams.of(spec).model
        where = part_dir(party_root / "models", model)
        if not where.is_dir():
            raise RefusedError(f"party {party!r} holds no part of model {model.name} version {model.version}")
        if sha256_dir(where) != model.parts[party]:
            raise RefusedError(
                f"party {party!r}: its part of model {model.name} version {model.version} differs from the "
                "registered one (altered or replaced); retrain or use another version"
            )
        record = PartRecord.read(where)
        me = spec.party(party)
        if tuple(me.features) != record.features:
            raise RefusedError(f"party {party!r}: the spec names other features than its part of model "
                               f"{model.name} was trained on")  # fmt: skip
        if party != spec.label_party and me.dataset != record.dataset:
            raise RefusedError(f"party {party!r} scores with the dataset its part was trained on "
                               f"({record.dataset!r}), not {me.dataset!r}")  # fmt: skip

    def devices(self, spec: JobSpec) -> Devices:
        # PSI of two parties runs on the SPU; prediction needs no HE (decision bits are plaintext).
        return Devices(spu=True)

    def summary(self, spec: JobSpec, outputs: Mapping[str, Outputs]) -> dict[str, Any]:
        p = P.JointScoreParams.of(spec)
        m = outputs[spec.label_party].metrics
        out: dict[str, Any] = {
            "model": {"name": p.model.name, "version": p.model.version, "kind": p.model.kind},
            "rows_scored": int(m.get("rows_scored", 0)),
            "platform_held": int(m.get("rows_held_by_all", 0)),
            "scores_table": f"party-local: parties/{spec.label_party}/scores/{p.model.name}/"
                            f"{spec.party(spec.label_party).dataset}/",
            "stability_psi": m.get("stability_psi"),
        }  # fmt: skip
        if "auc" in m:
            out["book"] = {"auc": m["auc"], "ks": m["ks"], "default_rate": m.get("default_rate")}
        if p.monitor is not None:
            out["alerts"] = {k.removeprefix("alerts_"): int(v) for k, v in m.items() if k.startswith("alerts_")}
        warnings = []
        psi = m.get("stability_psi")
        if psi is not None and psi > PSI_WARNING:
            warnings.append(f"the scores have shifted from the training population (stability index {psi:.3f} "
                            f"> {PSI_WARNING}); review the model before relying on it")  # fmt: skip
        csi = csv_rows(outputs[spec.label_party], CSI_TABLE)
        if csi is not None:
            out["csi"] = [r | {"csi": float(r["csi"]), "rows": int(r["rows"])} for r in csi]
            shifted = [f"{r['party']}:{r['feature']}" for r in out["csi"] if r["csi"] > CSI_WARNING]
            if shifted:
                warnings.append(f"features shifted since training (CSI > {CSI_WARNING}): {', '.join(shifted)}")
        if warnings:
            out["warnings"] = warnings
        return out

    def model_versions(self, spec: JobSpec) -> list[tuple[str, str]]:
        model = P.JointScoreParams.of(spec).model
        return [(model.name, model.version)]

    def tracking_params(self, spec: JobSpec) -> dict[str, Any]:
        p = P.JointScoreParams.of(spec)
        params = {"model": f"{p.model.name}:{p.model.version}", "model_kind": p.model.kind,
                  "trained_by": p.model.job_id, "reasons": p.reasons}  # fmt: skip
        if p.monitor is not None:
            params.update({"monitor.threshold_band": p.monitor.threshold_band,
                           "monitor.band_moves": p.monitor.band_moves})  # fmt: skip
        return params


JOINT_SCORE = JointScore()
