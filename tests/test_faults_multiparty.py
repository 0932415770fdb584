"""The fault matrix: kill -9 of each role during each stage, with real processes.

For every role in {platform node, bank node, the platform's worker, coordinator}
and every stage in {PSI, SecureBoost, SS-LR}, a job is started, the role's
process is killed with SIGKILL the moment the stage begins, and then:
every surviving side ends FAILED within 30 s; no process of the job is left;
no PSI key file or partial model part is left; every trail records the
failure; and, with the killed role restarted, the same spec runs to success.
One cluster serves every case; a case restarts what it killed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import yaml

from enclave.controls import audit, pki
from enclave.home import Home
from parties.client import api
from parties.client.local import LocalCluster
from parties.procs import works_in
from parties.transport.grpc_links import GrpcCoordinatorLink
from protocols.constants import JobState
from tests.test_multiparty import city, spec_for

pytestmark = pytest.mark.multiparty
PARTIES = ("platform", "bank")
ROLES = ("node-platform", "node-bank", "worker-platform", "coordinator")
STAGES = ("psi", "sgb", "sslr")


@pytest.fixture(scope="module")
def lab(small_city_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = city(small_city_home, tmp_path_factory.mktemp("faults"))
    doc = spec_for(home, trees=6).to_dict()
    doc["models"]["sgb"]["max_depth"] = 3
    doc["models"]["sslr"]["epochs"] = 2
    cluster = LocalCluster(home, list(PARTIES)).start()
    try:
        yield {"home": home, "cluster": cluster, "spec": yaml.safe_dump(doc)}
    finally:
        cluster.stop()
        for p in psutil.process_iter():
            if works_in(p.pid, home.root):
                p.kill()


def client(cluster: LocalCluster) -> GrpcCoordinatorLink:
    return GrpcCoordinatorLink(cluster.address, pki.holder_tls(cluster.home, "bank"))


def stage_began(home: Home, party: str, job_id: str, stage: str) -> bool:
    job_dir = home.party(party).job_dir(job_id)
    if stage == "psi":
        return (job_dir / "psi_in.csv").exists()  # written the moment PSI begins
    events = job_dir / "events.jsonl"
    return events.is_file() and any(json.loads(line)["stage"] == stage for line in events.read_text().splitlines())


def record(home: Home, party: str, job_id: str) -> dict[str, Any]:
    path = home.party(party).job_dir(job_id) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def job_processes(home: Home, job_id: str) -> list[int]:
    """Processes still running for a job: its workers (by working directory) and sidecars."""
    dirs = [home.party(p).job_dir(job_id) for p in PARTIES]
    return [p.pid for p in psutil.process_iter() if any(works_in(p.pid, d) for d in dirs)]


def kill(cluster: LocalCluster, role: str, job_id: str) -> None:
    if role == "worker-platform":
        os.kill(record(cluster.home, "platform", job_id)["worker_pid"], signal.SIGKILL)
    else:
        cluster.kill(role)


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic() - t0


def assert_nothing_left(home: Home, job_id: str) -> None:
    for party in PARTIES:
        job_dir = home.party(party).job_dir(job_id)
        assert not list(job_dir.glob("psi_*")), f"{party} kept PSI key files"
        assert not home.party(party).model_dir(job_id).exists(), f"{party} kept a partial model part"
        assert not (job_dir / "consent.json").exists()


def trail_ends(home: Home, job_id: str) -> dict[str, str]:
    return {e["signer"]: e["body"]["state"] for e in audit.story(home, job_id) if e["kind"] == "job_end"}


@pytest.mark.parametrize(("role", "stage"), [(r, s) for r in ROLES for s in STAGES])
def test_kill_a_role_during_a_stage(lab: dict[str, Any], role: str, stage: str) -> None:
    home: Home = lab["home"]
    cluster: LocalCluster = lab["cluster"]
    job_id = client(cluster).submit(lab["spec"]).job_id
    watched = "platform" if role in ("node-platform", "worker-platform") else "bank"
    wait_for(lambda: stage_began(home, watched, job_id, stage), 120, f"stage {stage} at {watched}")
    kill(cluster, role, job_id)
    survivors = [p for p in PARTIES if role != f"node-{p}"]
    took = wait_for(lambda: all(record(home, p, job_id).get("state") == "failed" for p in survivors), 30,
                    f"every surviving node failing the job after {role} was killed in {stage}")  # fmt: skip
    if role != "coordinator":
        wait_for(lambda: client(cluster).status(job_id).state is JobState.FAILED, 30 - took, "the coordinator")
    wait_for(lambda: not job_processes(home, job_id), 15, "the job's processes ending")
    if role in ("node-platform", "node-bank", "coordinator"):
        cluster.restart(role)  # a restarted node reconciles; a restarted coordinator concludes
    if role != "coordinator":
        assert client(cluster).status(job_id).state is JobState.FAILED
    assert_nothing_left(home, job_id)
    wait_for(lambda: trail_ends(home, job_id).get("coordinator") == "failed", 15, "the coordinator's trail")
    ends = trail_ends(home, job_id)
    assert all(ends.get(p) == "failed" for p in PARTIES), ends
    if stage != STAGES[-1]:
        # The next case submits the same spec on the same parties and must get past this stage;
        # the last stage's case runs it to success.
        return
    # The same spec runs again, to success, on the same parties.
    again = api.follow(client(cluster), client(cluster).submit(lab["spec"]).job_id)
    assert again.state is JobState.SUCCEEDED, again.detail
    wait_for(lambda: not job_processes(home, again.job_id), 15, "the successful job's processes ending")


def test_a_coordinator_restarted_mid_job_leaves_no_node_running_it(lab: dict[str, Any]) -> None:
    """Restarted at once (before any lease runs out), the coordinator itself concludes the job."""
    home: Home = lab["home"]
    cluster: LocalCluster = lab["cluster"]
    job_id = client(cluster).submit(lab["spec"]).job_id
    wait_for(lambda: stage_began(home, "bank", job_id, "sgb"), 120, "SecureBoost")
    cluster.kill("coordinator")
    cluster.restart("coordinator")
    lease = 10.0
    wait_for(lambda: all(record(home, p, job_id).get("state") == "failed" for p in PARTIES), lease + 5,
             "every node ending the job")  # fmt: skip
    details = {p: record(home, p, job_id)["detail"] for p in PARTIES}
    assert all(d == "coordinator restarted while the job ran" or d.startswith("lease expired") for d in
               details.values()), details  # fmt: skip
    assert client(cluster).status(job_id).state is JobState.FAILED
    wait_for(lambda: not job_processes(home, job_id), 15, "the job's processes ending")
    assert_nothing_left(home, job_id)
