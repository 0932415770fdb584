"""The description of ``joint_binning``: WOE and IV of every party's features, at the label owner.

Read by every role; imports nothing heavy. What may leave: the IV table per
feature and per catalogue category and its plot (aggregates), and the label
owner's own bins with their counts and WOE (small cells suppressed by its
gate). A partner's bin edges never leave it; its per-bin counts reach the label
owner only as HE sums.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave.controls.gate import Declared
from enclave.fields import Fields
from enclave.jobspec import JobSpec
from models.jobtype import Devices, HeuNeeds, JobType, csv_rows
from models.joint_binning import params as P
from protocols.errors import SpecError
from protocols.messages import Outputs

STAGE_PSI = "psi"
STAGE_BINNING = "binning"
IV_TABLE, IV_CATEGORIES, IV_PLOT, WOE_TABLE = "iv.csv", "iv_categories.csv", "iv.png", "woe_bins.json"


class JointBinning(JobType):
    name = "joint_binning"
    title = "vertical WOE/IV binning"
    stages = (STAGE_PSI, STAGE_BINNING)
    outputs = (
        Declared(IV_TABLE, "metrics", "text/csv"),
        Declared(IV_CATEGORIES, "metrics", "text/csv"),
        Declared(IV_PLOT, "plots", "image/png"),
        # The label owner's own features only: bins, firms, defaults and WOE (cells under min_cell_size suppressed).
        Declared(WOE_TABLE, "score_bands", "application/json"),
    )
    program = "models.joint_binning.program:run"
    public_keys = ("rows", "features", "selected", "iv", "iv_categories")
    headline = "iv_categories"

    def parse_params(self, top: Fields) -> P.BinningParams:
        return P.parse(top)

    def validate(self, spec: JobSpec) -> None:
        if spec.label is None:
            raise SpecError("label.column: binning needs the label column (WOE and IV are computed against it)")
        if len(spec.parties) > 3:
            raise SpecError(f"parties: joint_binning runs with two or three parties, not {len(spec.parties)}")

    def devices(self, spec: JobSpec) -> Devices:
        p = P.BinningParams.of(spec)
        return Devices(spu=True, heu=HeuNeeds(p.he, p.key_bits))  # PSI of two parties runs on the SPU

    def summary(self, spec: JobSpec, outputs: Mapping[str, Outputs]) -> dict[str, Any]:
        found = outputs[spec.label_party]
        iv = [row | {"iv": float(row["iv"]), "selected": row["selected"] == "True"}
              for row in csv_rows(found, IV_TABLE) or []]  # fmt: skip
        categories = [row | {"iv": float(row["iv"])} for row in csv_rows(found, IV_CATEGORIES) or []]
        return {"rows": int(found.metrics.get("rows", 0)), "features": len(iv),
                "selected": [f"{r['party']}:{r['feature']}" for r in iv if r["selected"]],
                "iv": iv, "iv_categories": categories}  # fmt: skip

    def tracking_params(self, spec: JobSpec) -> dict[str, Any]:
        return {f"binning.{k}": v for k, v in P.BinningParams.of(spec).to_dict()["binning"].items()}


JOINT_BINNING = JointBinning()
