"""Node and coordinator job logic in one process, over the in-process transport.

The coordinator drives two real ``JobManager``s (real homes, policies, audit
trails, output gate) through ``InProcNodeLink``s, which carry every call
through the same serde round trip and error sanitising as gRPC. Each node's
worker is a stand-in process that speaks the worker's file contract, so these
tests cover the state machines without sockets or SecretFlow; the
multi-process tests run the real thing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from enclave.controls import audit
from enclave.federation import Federation, Member
from enclave.files import write_json
from enclave.home import Home
from parties.coordinator import store as cstore
from parties.coordinator.jobs import Coordinator, fixed_links
from parties.node import store as nstore
from parties.node.config import NodeConfig
from parties.node.jobs import JobManager
from parties.node.workers import Worker
from parties.procs import pid_alive
from parties.tracking import Tracker
from parties.transport.inproc import InProcCoordinatorLink, InProcNodeLink
from protocols import constants as C
from protocols.constants import JobState
from protocols.errors import ForbiddenError, NotFoundError, RefusedError, SpecError, UnavailableError
from protocols.messages import Artifact, Endpoint, JobStatus, Outputs
from tests.test_multiparty import city, spec_for

STANDIN = Path(__file__).resolve().parent / "helpers" / "standin_worker.py"


def standin(mode: str) -> Any:
    """A launcher like the node's own, starting the stand-in worker in ``mode``."""

    def launch(job_dir: Path, config: dict[str, Any]) -> Worker:
        write_json(job_dir / C.WORKER_CONFIG, config)
        cmd = [sys.executable, str(STANDIN), str(job_dir), mode]
        return Worker(subprocess.Popen(cmd, cwd=job_dir, start_new_session=True))

    return launch


class Lab:
    """Two nodes and a coordinator in this process, on one city."""

    def __init__(self, home: Home, modes: dict[str, str]) -> None:
        self.home = home
        # Nodes take their peers' hosts from the federation file, even in one process.
        members = {p: Member(p, "127.0.0.1:1", p, "127.0.0.1") for p in modes}
        Federation("inproc", Member("coordinator", "127.0.0.1:1", "coordinator"), members).write(
            home.root / "federation.yaml"
        )
        self.nodes = {
            p: JobManager(NodeConfig.load(p, home), nstore.memory_store(), standin(m)) for p, m in modes.items()
        }
        self.store = cstore.memory_store()
        links = fixed_links({p: InProcNodeLink(n) for p, n in self.nodes.items()})
        self.coordinator = Coordinator(self.store, links, None, audit.coordinator_log(home), poll_seconds=0.05)
        self.client = InProcCoordinatorLink(self.coordinator, "bank")

    def run(self, spec_yaml: str, timeout: float = 60) -> JobStatus:
        job_id = self.client.submit(spec_yaml).job_id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.client.status(job_id)
            if st.state.terminal:
                return st
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} did not end in {timeout}s")

    def close(self) -> None:
        self.coordinator.shutdown()
        for n in self.nodes.values():
            n.shutdown()


@pytest.fixture
def lab_home(small_city_home: Home, tmp_path: Path) -> Home:
    return city(small_city_home, tmp_path)


@pytest.fixture
def make_lab(lab_home: Home) -> Iterator[Any]:
    labs: list[Lab] = []

    def make(platform: str = "ok", bank: str = "ok") -> Lab:
        labs.append(Lab(lab_home, {"platform": platform, "bank": bank}))
        return labs[-1]

    yield make
    for lab in labs:
        lab.close()


def test_a_job_succeeds_everywhere_and_releases_only_what_is_declared(make_lab: Any) -> None:
    lab = make_lab()
    final = lab.run(spec_for(lab.home).to_yaml())
    assert final.state is JobState.SUCCEEDED, final.detail
    assert {p.party: p.state for p in final.parties} == {"platform": JobState.SUCCEEDED, "bank": JobState.SUCCEEDED}
    result = json.loads(final.result_json)
    # The summary comes from the job type's description, fed by what the label owner released.
    assert result["models"] == {"sgb": {"auc": 0.81, "ks": 0.42}} and result["psi"]["intersection"] == 100
    releases = [e for e in audit.story(lab.home, final.job_id) if e["kind"] == "output_release"]
    bank = next(e for e in releases if e["signer"] == "bank")["body"]
    assert list(bank["released"]) == ["roc.png"] and "undeclared.csv" in bank["withheld"]
    # Both nodes and the coordinator persisted the end.
    assert [r.state for r in lab.store.load_all()] == [JobState.SUCCEEDED]
    for node in lab.nodes.values():
        assert [r.state for r in node.store.load_all()] == [JobState.SUCCEEDED]


def test_a_failing_worker_fails_the_job_at_every_party(make_lab: Any) -> None:
    lab = make_lab(bank="fail")
    final = lab.run(spec_for(lab.home).to_yaml())
    assert final.state is JobState.FAILED
    assert "party 'bank' failed: worker failed: stand-in failure" in final.detail
    assert {p.state for p in final.parties} == {JobState.FAILED}
    assert not lab.home.party("platform").model_dir(final.job_id).exists()


def test_a_refusal_reaches_the_coordinator_as_public_text_only(make_lab: Any) -> None:
    lab = make_lab()
    final = lab.run(spec_for(lab.home, extra_platform=["secret_column"], bank_first=True).to_yaml())
    assert final.state is JobState.FAILED
    assert final.detail == (
        "party 'platform' refused the job: dataset 'firm_profile' of 'platform' has no column(s) ['secret_column']"
    )
    assert {p.party: p.state for p in final.parties} == {"bank": JobState.FAILED}


def test_cancel_stops_every_worker(make_lab: Any) -> None:
    lab = make_lab(platform="hang", bank="hang")
    job_id = lab.client.submit(spec_for(lab.home).to_yaml()).job_id
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = lab.client.status(job_id)
        if st.parties and all(p.worker_pid for p in st.parties):
            break
        time.sleep(0.05)
    pids = [p.worker_pid for p in lab.client.status(job_id).parties]
    final = lab.client.cancel(job_id)
    assert final.state is JobState.CANCELLED and {p.state for p in final.parties} == {JobState.CANCELLED}
    assert pids and not [p for p in pids if pid_alive(p)]


def test_node_control_plane_rules(make_lab: Any) -> None:
    lab = make_lab()
    node = lab.nodes["bank"]
    link = InProcNodeLink(node)
    spec = spec_for(lab.home).to_yaml()
    with pytest.raises(SpecError, match=r"job id '\.\./x' is invalid"):
        link.prepare("../x", spec)
    link.prepare("j1", spec)
    with pytest.raises(RefusedError, match="already known here"):
        link.prepare("j1", spec)
    with pytest.raises(RefusedError, match="cannot succeed here: the worker has not finished"):
        link.conclude("j1", JobState.SUCCEEDED, "no")
    assert link.conclude("j1", JobState.FAILED, "first").detail == "first"
    assert link.conclude("j1", JobState.CANCELLED, "second").state is JobState.FAILED  # the first end stands
    with pytest.raises(NotFoundError, match="no job 'j2' at party 'bank'"):
        link.status("j2")
    weak = spec.replace("key_bits: 2048", "key_bits: 1024")
    assert weak != spec
    with pytest.raises(RefusedError, match="refuses HE keys under 2048 bits \\(the job asks 1024\\)"):
        link.prepare("j3", weak)


def test_restarted_roles_read_their_stores_back(make_lab: Any, lab_home: Home) -> None:
    lab = make_lab()
    node = lab.nodes["bank"]
    node.prepare("j-open", spec_for(lab.home).to_yaml())
    node.prepare("j-done", spec_for(lab.home).to_yaml())
    node.conclude("j-done", JobState.CANCELLED, "by test")
    lab.home.party("bank").model_dir("j-open").mkdir(parents=True)
    again = JobManager(NodeConfig.load("bank", lab_home), node.store)
    assert again.status("j-done").state is JobState.CANCELLED
    reopened = again.status("j-open")
    assert reopened.state is JobState.FAILED and reopened.detail == "node restarted while the job ran"
    assert not lab.home.party("bank").model_dir("j-open").exists()
    # The coordinator likewise: a job it was running when it stopped ends failed.
    running = cstore.CoordRecord("c-1", spec_for(lab.home).to_yaml(), JobState.RUNNING, "sgb", "tree 3/9")
    lab.store.save(running)
    coordinator = Coordinator(lab.store, fixed_links({}), None)
    st = coordinator.status("c-1")
    assert st.state is JobState.FAILED and st.detail == "coordinator restarted while the job ran"
    assert {r.job_id: r.state for r in lab.store.load_all()}["c-1"] is JobState.FAILED


def test_only_a_party_of_a_job_may_submit_follow_or_cancel_it(make_lab: Any) -> None:
    lab = make_lab(platform="hang", bank="hang")
    stranger = InProcCoordinatorLink(lab.coordinator, "bank-b")
    with pytest.raises(ForbiddenError, match="'bank-b' is not a party of this job and may not submit it"):
        stranger.submit(spec_for(lab.home).to_yaml())
    job_id = lab.client.submit(spec_for(lab.home).to_yaml()).job_id
    with pytest.raises(ForbiddenError, match="may not follow it"):
        stranger.status(job_id)
    with pytest.raises(ForbiddenError, match="may not cancel it"):
        stranger.cancel(job_id)
    assert InProcCoordinatorLink(lab.coordinator, "platform").cancel(job_id).state is JobState.CANCELLED


def test_a_node_takes_peer_hosts_from_its_federation_file_not_from_the_caller(make_lab: Any) -> None:
    lab = make_lab()
    node = lab.nodes["bank"]
    spec = spec_for(lab.home).to_yaml()
    mine = node.prepare("j1", spec).endpoint
    evil = [Endpoint("platform", "203.0.113.9", 4000, 4001), mine]
    node.start("j1", evil)
    cfg = json.loads((lab.home.party("bank").job_dir("j1") / C.WORKER_CONFIG).read_text())
    assert {e["party"]: e["host"] for e in cfg["cluster"]} == {"platform": "127.0.0.1", "bank": "127.0.0.1"}
    node.conclude("j1", JobState.CANCELLED, "test over")
    Federation("inproc", Member("coordinator", "127.0.0.1:1", "coordinator"), {
        "platform": Member("platform", "127.0.0.1:1", "platform", "127.0.0.1", (7200, 7210)),
        "bank": Member("bank", "127.0.0.1:1", "bank", "127.0.0.1"),
    }).write(lab.home.root / "federation.yaml")  # fmt: skip
    mine = node.prepare("j2", spec).endpoint
    with pytest.raises(SpecError, match="ports given for 'platform' are outside its federation entry"):
        node.start("j2", [Endpoint("platform", "127.0.0.1", 4000, 4001), mine])


def _bind(port: int, reuse: bool) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    return s


def test_a_node_holds_each_jobs_ports_from_prepare_until_the_job_ends(make_lab: Any) -> None:
    """Two jobs prepared at once in a narrow port range get disjoint ports, which nothing
    else can take until each job ends, while its sidecar (SO_REUSEPORT) can still listen."""
    lab = make_lab()
    node = lab.nodes["bank"]
    Federation("inproc", Member("coordinator", "127.0.0.1:1", "coordinator"), {
        "platform": Member("platform", "127.0.0.1:1", "platform", "127.0.0.1"),
        "bank": Member("bank", "127.0.0.1:1", "bank", "127.0.0.1", (7230, 7233)),
    }).write(lab.home.root / "federation.yaml")  # fmt: skip
    spec = spec_for(lab.home).to_yaml()
    first, second = node.prepare("h1", spec).endpoint, node.prepare("h2", spec).endpoint
    ports = [first.link_port, first.spu_port, second.link_port, second.spu_port]
    assert sorted(ports) == [7230, 7231, 7232, 7233]
    with pytest.raises(UnavailableError, match="no two free worker ports"):  # the range is spent while both are held
        node.prepare("h3", spec)
    with pytest.raises(OSError, match="in use"):
        _bind(first.link_port, reuse=False).close()
    sidecar = _bind(first.link_port, reuse=True)
    sidecar.listen()
    sidecar.close()
    node.conclude("h1", JobState.CANCELLED, "test over")
    _bind(first.link_port, reuse=False).close()  # released with the job
    with pytest.raises(OSError, match="in use"):
        _bind(second.spu_port, reuse=False).close()
    node.conclude("h2", JobState.CANCELLED, "test over")


class TamperingNode(InProcNodeLink):
    """A node that sends more than its job type declares."""

    def outputs(self, job_id: str) -> Outputs:
        out = super().outputs(job_id)
        extra = (Artifact("../x", "text/plain", b"escape", "0" * 64), Artifact("scored_list.csv", "text/csv", b"", ""))
        return replace(out, artifacts=(*out.artifacts, *extra))


def test_outputs_leave_once_after_success_and_only_under_declared_names(make_lab: Any, lab_home: Home) -> None:
    lab = make_lab()
    links = fixed_links({"platform": InProcNodeLink(lab.nodes["platform"]), "bank": TamperingNode(lab.nodes["bank"])})
    tracker = Tracker.for_home(lab_home)
    coordinator = Coordinator(lab.store, links, lambda: tracker, audit.coordinator_log(lab_home), poll_seconds=0.05)
    client = InProcCoordinatorLink(coordinator, "bank")
    job_id = client.submit(spec_for(lab.home).to_yaml()).job_id
    deadline = time.monotonic() + 60
    while not client.status(job_id).state.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    final = client.status(job_id)
    assert final.state is JobState.SUCCEEDED, final.detail
    refused = [e for e in audit.story(lab_home, job_id) if e["kind"] == "output_refused"]
    assert [e["body"] for e in refused] == [{"party": "bank", "names": ["../x", "scored_list.csv"]}]
    run_id = json.loads(final.result_json)["mlflow"]["run_id"]
    logged = [a.path for a in tracker.client.list_artifacts(run_id, "plots")]
    assert logged == ["plots/roc.png"]
    assert not list(lab_home.root.rglob("x")) and not (lab_home.artifact_root.parent / "x").exists()
    # A node lets its outputs leave once, and only after the job succeeded.
    with pytest.raises(RefusedError, match="were released already; they leave once"):
        InProcNodeLink(lab.nodes["bank"]).outputs(job_id)
    node = lab.nodes["platform"]
    node.prepare("early", spec_for(lab.home).to_yaml())
    with pytest.raises(RefusedError, match="outputs leave only after it succeeded"):
        node.outputs("early")


def test_a_node_fails_a_job_whose_coordinator_falls_silent_or_whose_deadline_passes(make_lab: Any) -> None:
    lab = make_lab(bank="hang")
    node = lab.nodes["bank"]
    spec = spec_for(lab.home).to_yaml()
    mine = node.prepare("quiet", spec).endpoint
    node.start("quiet", [Endpoint("platform", "127.0.0.1", 4000, 4001), mine])
    pid = node.status("quiet").worker_pid
    assert pid and pid_alive(pid)
    assert node.expire(time.monotonic() + node.config.lease_seconds / 2) == []  # a lease still running
    assert node.expire(time.monotonic() + node.config.lease_seconds + 1) == ["quiet"]
    st = node.status("quiet")
    assert st.state is JobState.FAILED and st.detail.startswith("lease expired: the coordinator was silent")
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    ends = [e for e in audit.story(lab.home, "quiet") if e["kind"] == "job_end" and e["signer"] == "bank"]
    assert [e["body"]["state"] for e in ends] == ["failed"]
    # A job that has run past its deadline ends too, even while the coordinator keeps calling.
    mine = node.prepare("slow", spec.replace("deadline_minutes: 120", "deadline_minutes: 1")).endpoint
    node.start("slow", [Endpoint("platform", "127.0.0.1", 4000, 4001), mine])
    node.jobs["slow"].record = replace(node.jobs["slow"].record, started_at=time.time() - 61)
    assert node.expire() == ["slow"]
    assert node.status("slow").detail == "deadline of 1 minutes passed"


def test_a_restarted_coordinator_concludes_its_interrupted_jobs_at_every_node(make_lab: Any) -> None:
    lab = make_lab()
    spec = spec_for(lab.home).to_yaml()
    for node in lab.nodes.values():
        node.prepare("c-2", spec)
    lab.store.save(cstore.CoordRecord("c-2", spec, JobState.RUNNING, "psi", "running"))
    links = fixed_links({p: InProcNodeLink(n) for p, n in lab.nodes.items()})
    coordinator = Coordinator(lab.store, links, None, audit.coordinator_log(lab.home))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(n.status("c-2").state.terminal for n in lab.nodes.values()):
        time.sleep(0.05)
    assert {p: n.status("c-2").detail for p, n in lab.nodes.items()} == dict.fromkeys(
        lab.nodes, "coordinator restarted while the job ran"
    )
    assert coordinator.status("c-2").state is JobState.FAILED


@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeded", "failed"])
def test_an_ended_job_leaves_no_key_file_nor_what_psi_began(tmp_path: Path, succeeded: bool) -> None:
    from models.local import CONSENT_FILE, KEY_FILES, TMP_DIR, discard_transient

    job_dir, model_dir = tmp_path / "job", tmp_path / "model"
    (job_dir / TMP_DIR).mkdir(parents=True)
    model_dir.mkdir()
    (model_dir / "part.json").write_text("{}")
    (job_dir / TMP_DIR / "sorted_keys").write_text("k")
    # PSI's key files, what a worker killed mid-PSI leaves beside them, and the job's own records.
    for name in (*KEY_FILES, CONSENT_FILE, "psi_in.csv.temp.csv", "psi_out.csv.tmp", "state.json", "events.jsonl"):
        (job_dir / name).write_text("x")
    discard_transient(job_dir, model_dir, keep_model=succeeded)
    assert sorted(p.name for p in job_dir.iterdir()) == ["events.jsonl", "state.json"]
    assert model_dir.exists() is succeeded
