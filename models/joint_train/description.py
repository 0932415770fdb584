"""The description of ``joint_train``: PSI, SecureBoost, SS-LR and the bank-only baseline.

Read by every role; imports nothing heavy, so nodes and the coordinator load
it without SecretFlow. The program is ``models.joint_train.program:run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave.controls.gate import Declared
from enclave.fields import Fields
from enclave.jobspec import JobSpec
from models.jobtype import Devices, HeuNeeds, JobType, csv_rows
from models.joint_train import params as P
from protocols.errors import SpecError
from protocols.messages import Fingerprint, Outputs

STAGE_PSI = "psi"
STAGE_SPLIT = "split"
STAGE_SGB = "sgb"
STAGE_SSLR = "sslr"
STAGE_SCORECARD = "scorecard"
STAGE_BANK_ONLY = "bank_only"
STAGE_SAVE = "save"

TITLES = {"sgb": "SecureBoost", "sslr": "SS-LR", "scorecard": "scorecard (WOE LR)", "bank_only": "bank-only LightGBM"}
IV_TABLE, IV_CATEGORIES, IV_PLOT = "iv.csv", "iv_categories.csv", "iv.png"
POINTS_TABLE, CSI_TABLE = "scorecard_points.json", "csi.csv"
UPLIFT_TABLE, UPLIFT_PLOT = "uplift.csv", "uplift.png"
SCORECARD_FILES = (IV_TABLE, IV_CATEGORIES, IV_PLOT, POINTS_TABLE, CSI_TABLE, UPLIFT_TABLE, UPLIFT_PLOT)


def _plot(name: str) -> Declared:
    return Declared(name, "plots", "image/png")


class JointTrain(JobType):
    name = "joint_train"
    title = "joint credit model training"
    stages = (STAGE_PSI, STAGE_SPLIT, STAGE_SGB, STAGE_SSLR, STAGE_SCORECARD, STAGE_BANK_ONLY, STAGE_SAVE)
    outputs = (
        _plot("roc.png"),
        *(_plot(f"ks_{k}.png") for k in P.MODEL_KINDS),
        Declared("score_bands.json", "score_bands", "application/json"),
        # Aggregates of the scorecard's binning: IV per feature and per catalogue category.
        Declared(IV_TABLE, "metrics", "text/csv"),
        Declared(IV_CATEGORIES, "metrics", "text/csv"),
        _plot(IV_PLOT),
        # The label owner's own features' bins and points (bins with few firms suppressed), and their
        # stability between training and held-out rows. A partner's points never leave it in plaintext.
        Declared(POINTS_TABLE, "score_bands", "application/json"),
        Declared(CSI_TABLE, "metrics", "text/csv"),
        # What each catalogue category of the partner's data adds (held-out AUC of scorecard variants).
        Declared(UPLIFT_TABLE, "metrics", "text/csv"),
        _plot(UPLIFT_PLOT),
        *(Declared(f"bands_{k}.json", "score_bands", "application/json") for k in P.MODEL_KINDS),
        Declared("scored_list.csv", "scored_list", "text/csv", per_firm=True),
        Declared("holdout_scores.parquet", "scores", "application/vnd.apache.parquet", per_firm=True),
    )
    program = "models.joint_train.program:run"
    model_kinds = P.MODEL_KINDS
    public_keys = ("models", "iv")
    headline = "models"

    def parse_params(self, top: Fields) -> P.JointTrainParams:
        return P.parse(top)

    def validate(self, spec: JobSpec) -> None:
        if spec.label is None:
            raise SpecError("label.column: training needs the label column")
        # PSI and the two-node SPU (CHEETAH) carry two or three parties.
        if len(spec.parties) > 3:
            raise SpecError(f"parties: joint_train runs with two or three parties, not {len(spec.parties)}")

    def devices(self, spec: JobSpec) -> Devices:
        p = P.JointTrainParams.of(spec)
        # PSI runs on the SPU, so every joint_train worker needs one.
        # The node checks the shortest key any model of the job makes.
        uses = sorted((q.key_bits, q.he) for q in (p.sgb, p.scorecard) if q is not None)
        heu = HeuNeeds(uses[0][1], uses[0][0]) if uses else None
        return Devices(spu=True, heu=heu)

    def summary(self, spec: JobSpec, outputs: Mapping[str, Outputs]) -> dict[str, Any]:
        label = outputs[spec.label_party].metrics
        models = {
            k: {"auc": label[f"{k}_auc"], "ks": label[f"{k}_ks"]}
            for k in P.JointTrainParams.of(spec).models
            if f"{k}_auc" in label
        }
        out: dict[str, Any] = {"models": models, "test_rows": int(label.get("test_rows", 0))}
        iv = csv_rows(outputs[spec.label_party], IV_TABLE)
        if iv is not None:
            out["iv"] = [row | {"iv": float(row["iv"]), "selected": row["selected"] == "True"} for row in iv]
        return out

    def manifests(
        self, spec: JobSpec, job_id: str, outputs: Mapping[str, Outputs], fingerprints: Mapping[str, Fingerprint]
    ) -> dict[str, dict[str, Any]]:
        p = P.JointTrainParams.of(spec)
        out = {}
        for kind in P.JOINT_KINDS:
            if getattr(p, kind) is None:
                continue
            out[kind] = {
                "model": kind,
                "job_id": job_id,
                "spec_sha256": spec.sha256,
                "label_party": spec.label_party,
                "label": spec.label,
                "key": spec.key,
                "parties": {
                    party.name: {
                        "part_sha256": outputs[party.name].model_parts.get(kind, ""),
                        "location": f"party-local: models/{job_id}/{kind}",
                        "features": list(party.features),
                        "dataset": party.dataset,
                        "dataset_sha256": fingerprints[party.name].sha256,
                    }
                    for party in spec.parties
                },
            }
        return out

    def tracking_params(self, spec: JobSpec) -> dict[str, Any]:
        p = P.JointTrainParams.of(spec)
        params: dict[str, Any] = {"test_fraction": p.test_fraction, "seed": p.seed, "models": ",".join(p.models)}
        for kind in P.JOINT_KINDS:
            sub = getattr(p, kind)
            if sub is not None:
                params.update({f"{kind}.{k}": v for k, v in sub.__dict__.items()})
        return params

    def model_title(self, kind: str) -> str:
        return TITLES.get(kind, kind)


JOINT_TRAIN = JointTrain()
