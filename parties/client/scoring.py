"""Using a registered model: batch scoring, early warning on a loan book, and their specs.

The bank names a registered model (``name`` or ``name:version``) and one of its
own tables; the spec comes from the model's manifest (every party's features,
the platform's training dataset, the parts' hashes), so every node checks it
still holds the very part that was registered. Scores, bands, reasons and
alerts stay in the bank's home; the summary names where.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from enclave.data import schema as sch
from enclave.home import Home
from enclave.jobspec import JobSpec, document
from models import registry
from models.joint_score.params import MonitorParams
from parties.serving.client import OnlineClient, client_for
from parties.tracking import Tracker
from protocols.errors import SpecError

Progress = Callable[[str], None]


def spec_for(
    home: Home, model: str, dataset: str, *, purpose: str = "scoring", monitor: MonitorParams | None = None,
    reasons: int = 3, deployment: str = "local",
) -> JobSpec:  # fmt: skip
    """The ``joint_score`` spec that applies ``model`` (``name[:version]``) to the label owner's ``dataset``."""
    name, _, version = model.partition(":")
    version, manifest = Tracker(home.tracking_uri).manifest(name, version or None)
    label_party = str(manifest["label_party"])
    parties: dict[str, tuple[str, list[str]]] = {}
    for party, info in manifest["parties"].items():
        if "dataset" not in info:
            raise SpecError(f"model {name} version {version} was registered before scoring existed; retrain it")
        parties[party] = (dataset if party == label_party else str(info["dataset"]), list(info["features"]))
    schema = sch.read_schema(home.party(label_party).dataset_dir(dataset))
    label = str(manifest.get("label") or "")
    has_label = label in schema.by_name and schema.by_name[label].role == "label"
    params: dict[str, Any] = {
        "model": {"name": name, "version": version, "kind": manifest["model"], "job_id": manifest["job_id"],
                  "parts": {p: i["part_sha256"] for p, i in manifest["parties"].items()}},
        "reasons": reasons,
    }  # fmt: skip
    if monitor is not None:
        params["monitor"] = asdict(monitor)
    doc = document("joint_score", f"{purpose[:5]}-{name}"[:24].rstrip("-_"), parties,
                   (label_party, label if has_label else None), params, key=str(manifest["key"]),
                   purpose=purpose, deployment=deployment)  # fmt: skip
    return registry.parse_spec(doc, f"scoring spec for {name}:{version}")


def summarise(home: Home, result: dict[str, Any], spec: JobSpec) -> dict[str, Any]:
    """What ``safehouse score --json`` writes: counts, the bank's own table path, the book's AUC."""
    table_dir = home.party(spec.label_party).root / "scores" / result["model"]["name"] / \
        spec.party(spec.label_party).dataset  # fmt: skip
    tables = sorted(table_dir.glob(f"*-{result['job_id']}.parquet")) if table_dir.is_dir() else []
    out = {
        "job_id": result["job_id"],
        "model": result["model"],
        "rows_scored": result["rows_scored"],
        "held_by_all_parties": result["platform_held"],
        "scores_table": str(tables[-1]) if tables else None,
        "stability_psi": result.get("stability_psi"),
        "mlflow": result.get("mlflow", {}),
        "seconds": result.get("seconds"),
    }
    for key in ("book", "csi", "alerts", "warnings"):
        if key in result:
            out[key] = result[key]
    if "alerts" in result:
        alerts = home.party(spec.label_party).root / "alerts" / result["model"]["name"]
        found = sorted(alerts.glob(f"*-{result['job_id']}.parquet")) if alerts.is_dir() else []
        out["alerts_table"] = str(found[-1]) if found else None
    return out


def score(home: Home, model: str, dataset: str, progress: Progress | None = print, **kw: Any) -> dict[str, Any]:
    """Score the label owner's ``dataset`` with ``model``; the summary ``safehouse score --json`` writes."""
    from parties.client import api

    spec = spec_for(home, model, dataset, **kw)
    out = summarise(home, api.run(spec, home, progress), spec)
    for warning in out.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    return out


def monitor(
    home: Home, model: str, dataset: str, every: float | None = None, progress: Progress | None = print,
    rounds: int | None = None, **kw: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """Re-score a loan book and compare it with its previous scoring, once or every ``every`` seconds."""
    watch = kw.pop("monitor", None) or MonitorParams()
    summaries = []
    while True:
        summaries.append(score(home, model, dataset, progress, purpose="monitoring", monitor=watch, **kw))
        if every is None or (rounds is not None and len(summaries) >= rounds):
            return summaries
        time.sleep(every)


def read_table(path: str | Path) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


@contextmanager
def serving(home: Home, parties: Sequence[str], insecure_dev: bool = False) -> Iterator[OnlineClient]:
    """Local scoring services for a notebook or a trial: every party's node and ``safehouse serve``,
    contributors first, the label owner last; yields the label owner's client. Stops them on exit."""
    from parties.client.local import LocalCluster

    with LocalCluster(home, list(parties), insecure_dev=insecure_dev) as cluster:
        cluster.serve(list(parties))
        client = client_for(home, parties[-1], insecure_dev=insecure_dev)
        try:
            yield client
        finally:
            client.close()
