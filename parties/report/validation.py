"""The validation report of one model version, built at the coordinator from what the parties released.

Sections (each an ``<section id=...>``): ``data`` (datasets, fingerprints and
the population), ``performance`` (AUC and KS of every model of the job, ROC,
KS, lift and gains by band), ``binning`` (IV per feature and per catalogue
category), ``points`` (the label owner's own scorecard points; a partner's
stay encrypted with it), ``stability`` (characteristic stability of the label
owner's features, training against held-out rows), ``uplift`` (what each
catalogue category adds) and ``controls`` (policies, consent, withheld
outputs, link security, audit entry hashes). It holds only released
aggregates: no firm, no per-firm score, no partner's bin or point.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from enclave.jobspec import JobSpec
from protocols.messages import Fingerprint, Outputs

SECTIONS = ("data", "performance", "binning", "points", "stability", "uplift", "controls")


@dataclass(frozen=True)
class ReportInput:
    spec: JobSpec
    job_id: str
    kind: str
    title: str
    model: str  # registered name:version
    outputs: Mapping[str, Outputs]
    fingerprints: Mapping[str, Fingerprint]
    models: Mapping[str, Mapping[str, float]]  # kind -> {"auc", "ks"} of every model of the job
    audit: Mapping[str, list[str]]  # party (or "coordinator") -> audit entry hashes


def _files(out: Outputs) -> dict[str, bytes]:
    return {a.name: a.data for a in out.artifacts}


def _png(data: bytes | None) -> str | None:
    return None if data is None else "data:image/png;base64," + base64.b64encode(data).decode()


def _csv(data: bytes | None) -> list[dict[str, str]]:
    return [] if data is None else list(csv.DictReader(io.StringIO(data.decode())))


def gains(bands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lift and cumulative gains per band (riskiest first); suppressed bands stay suppressed."""
    known = [b for b in bands if b.get("firms") is not None and b.get("defaults") is not None]
    firms, defaults = sum(b["firms"] for b in known), sum(b["defaults"] for b in known)
    rate = defaults / firms if firms else 0.0
    out, cum_f, cum_d = [], 0, 0
    for b in bands:
        if b not in known:
            out.append({"band": b.get("band"), "suppressed": True})
            continue
        cum_f, cum_d = cum_f + b["firms"], cum_d + b["defaults"]
        bad = b["defaults"] / b["firms"] if b["firms"] else 0.0
        out.append({"band": b["band"], "suppressed": False, "firms": b["firms"], "defaults": b["defaults"],
                    "bad_rate": bad, "lift": bad / rate if rate else 0.0, "cum_firms": cum_f / firms if firms else 0.0,
                    "gains": cum_d / defaults if defaults else 0.0})  # fmt: skip
    return out


def context(r: ReportInput) -> dict[str, Any]:
    """Everything the template shows, from released outputs only."""
    label = r.spec.label_party
    files = _files(r.outputs[label])
    metrics = r.outputs[label].metrics
    bands = json.loads(files.get(f"bands_{r.kind}.json", b"[]"))
    return {
        "title": r.title, "model": r.model, "kind": r.kind, "job_id": r.job_id, "spec_sha256": r.spec.sha256,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "label_party": label,
        "parties": [{"name": p.name, "dataset": p.dataset, "features": len(p.features),
                     "rows": r.fingerprints[p.name].rows, "sha256": r.fingerprints[p.name].sha256}
                    for p in r.spec.parties],
        "population": {"aligned": int(metrics.get("psi_intersection", 0)),
                       "test_rows": int(metrics.get("test_rows", 0)), "default_rate": metrics.get("test_default_rate")},
        "models": [{"kind": k, **v, "this": k == r.kind} for k, v in r.models.items()],
        "roc": _png(files.get("roc.png")), "ks": _png(files.get(f"ks_{r.kind}.png")),
        "gains": gains(bands), "iv": _csv(files.get("iv.csv")), "iv_categories": _csv(files.get("iv_categories.csv")),
        "iv_plot": _png(files.get("iv.png")), "points": json.loads(files.get("scorecard_points.json", b"[]")),
        "csi": _csv(files.get("csi.csv")), "uplift": _csv(files.get("uplift.csv")),
        "uplift_plot": _png(files.get("uplift.png")),
        "controls": [{"party": p, **dict(o.security), "release_entry": o.audit_hash} for p, o in r.outputs.items()],
        "audit": dict(r.audit),
    }  # fmt: skip


def render(r: ReportInput) -> str:
    """The page: ``validation.html`` beside this module, autoescaped."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    return env.get_template("validation.html").render(**context(r))
