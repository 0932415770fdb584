"""The Python API behind the CLI, for notebooks and scripts.

``run(spec)`` runs a job spec end to end (starting local party processes when
the spec asks for a local deployment) and returns its summary, the same dict
``safehouse run --json`` writes. ``follow`` streams a job's progress.
``import_table``, ``split_table`` and ``review_schema`` bring your own data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enclave import federation
from enclave.controls import pki
from enclave.data import importing
from enclave.home import Home
from enclave.jobspec import JobSpec
from models import registry
from models.joint_train.params import JointTrainParams
from parties.client import workflows
from parties.client.local import LocalCluster
from parties.tracking import Tracker
from parties.transport import CoordinatorService
from parties.transport.grpc_links import GrpcCoordinatorLink
from protocols.constants import JobState
from protocols.errors import JobFailedError, SpecError
from protocols.messages import JobStatus

Progress = Callable[[str], None]

# Bring-your-own-data entry points, shared with the CLI.
import_table = importing.import_file
review_schema = importing.review_schema
split_table = workflows.split_table


def follow(client: CoordinatorService, job_id: str, progress: Progress | None = None, poll: float = 0.5) -> JobStatus:
    """Poll a job until it ends, reporting each new stage or party detail."""
    seen: dict[str, tuple[str, str]] = {}
    last_job = ("", "")
    while True:
        st = client.status(job_id)
        if progress is not None:
            for p in st.parties:
                now = (p.stage, p.detail)
                if seen.get(p.party) != now:
                    # Parties move in lockstep: say a step once, not once per party.
                    if now not in seen.values():
                        progress(f"[{p.party}] {p.stage}: {p.detail}")
                    seen[p.party] = now
            if not st.parties and (st.stage, st.detail) != last_job:
                last_job = (st.stage, st.detail)
                progress(f"[coordinator] {st.stage}: {st.detail}")
        if st.state.terminal:
            return st
        time.sleep(poll)


def public_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON ``safehouse demo --json`` and ``safehouse run --json`` write: what the job type
    declares public of its summary, then the envelope every job has."""
    job_type = result.get("job", "joint_train")
    own = {k: result[k] for k in registry.get(job_type).public_keys if k in result}
    return own | {
        "job": job_type,
        "psi": result["psi"],
        "mlflow": {"tracking_uri": result["mlflow"]["tracking_uri"], "run_id": result["mlflow"]["run_id"]},
        "job_id": result["job_id"],
        "seconds": result["seconds"],
        "stage_seconds": result["stage_seconds"],
        "peak_rss_mb": result["peak_rss_mb"],
        "security": result.get("security", {}),
    }


def summary(status: JobStatus) -> dict[str, Any]:
    if status.state is not JobState.SUCCEEDED:
        raise JobFailedError(f"job {status.job_id} {status.state.value}: {status.detail}")
    result: dict[str, Any] = json.loads(status.result_json)
    result["job_id"] = status.job_id
    return result


def _pooled(spec: JobSpec) -> bool:
    return isinstance(spec.params, JointTrainParams) and spec.params.pooled_reference


def run(
    spec: JobSpec | str | Path,
    home: Home | None = None,
    progress: Progress | None = print,
    coordinator: str | None = None,
    as_party: str | None = None,
    insecure_dev: bool = False,
    cluster: LocalCluster | None = None,
) -> dict[str, Any]:
    """Run a job spec and return its summary; raise JobFailedError if it fails.

    A local deployment starts every party's processes here, or uses ``cluster``
    (started by the caller, holding every party of the spec); a remote one
    submits to the coordinator the federation file names (or ``coordinator``).
    The job is submitted as ``as_party`` (default: the label owner), with that
    party's certificate.
    """
    home = home or Home.resolve()
    if not isinstance(spec, JobSpec):
        spec = registry.load_spec(spec)
    if _pooled(spec) and not spec.local:
        raise SpecError("reference.pooled is simulation-only and needs a local deployment")
    submitter = as_party or spec.label_party
    if submitter not in spec.party_names:
        raise SpecError(f"--as {submitter!r}: only a party of the job may submit it ({spec.party_names})")

    def submit_and_follow(client: CoordinatorService) -> JobStatus:
        job_id = client.submit(spec.to_yaml()).job_id
        if progress:
            progress(f"job {job_id} submitted")
        return follow(client, job_id, progress)

    if spec.local and cluster is not None:
        missing = sorted(set(spec.party_names) - set(cluster.parties))
        if missing:
            raise SpecError(f"the local cluster runs no node for {missing}")
        status = submit_and_follow(GrpcCoordinatorLink(cluster.address, pki.holder_tls(home, submitter, insecure_dev)))
    elif spec.local:
        # The local launcher makes the PKI first, so the certificate is read after it starts.
        with LocalCluster(home, spec.party_names, insecure_dev=insecure_dev) as local:
            tls = pki.holder_tls(home, submitter, insecure_dev)
            status = submit_and_follow(GrpcCoordinatorLink(local.address, tls))
    else:
        fed = federation.load(home.root / federation.FILE)
        address = coordinator or fed.coordinator.address
        tls = pki.holder_tls(home, submitter, insecure_dev)
        status = submit_and_follow(GrpcCoordinatorLink(address, tls, fed.coordinator.identity))
    result = summary(status)
    if _pooled(spec):
        add_pooled_reference(home, spec, result, progress)
    return result


def add_pooled_reference(home: Home, spec: JobSpec, result: dict[str, Any], progress: Progress | None) -> None:
    """Compute the simulation-only pooled model and record it beside the job."""
    from models.reference import pooled

    if progress:
        progress("[simulation] pooled plaintext LightGBM on all columns (reference only)")
    ref = pooled(home, spec)
    result["models"]["pooled"] = {"auc": ref.auc, "ks": ref.ks, "simulation_only": True}
    run_id = result.get("mlflow", {}).get("run_id")
    if run_id:
        tracker = Tracker(result["mlflow"]["tracking_uri"])
        tracker.log_metrics(run_id, {"pooled_auc": ref.auc, "pooled_ks": ref.ks})
        tracker.client.set_tag(run_id, "safehouse.pooled_reference", "simulation-only: rows joined in one process")


def mlflow_run(result: dict[str, Any]) -> Any:
    """The MLflow run of a job summary, for reading metrics and artifacts back."""
    tracker = Tracker(result["mlflow"]["tracking_uri"])
    return tracker.client.get_run(result["mlflow"]["run_id"])
