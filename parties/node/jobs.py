"""The node's job manager: checks, worker lifecycle and state, free of gRPC.

States move QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. A node sets
FAILED itself when its worker fails; SUCCEEDED, and FAILED or CANCELLED
caused elsewhere, come from the coordinator's ``conclude``, so every side ends
in the same state. Leaving a terminal state is impossible. Every change is
written to the node's store, which is read back when the node starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from enclave.controls import audit, consent, gate, policy
from enclave.data import dataset
from enclave.data import schema as sch
from enclave.files import write_atomic
from enclave.jobspec import JobSpec
from models import registry
from models.jobtype import ProgramResult
from models.local import CONSENT_FILE, discard_transient
from parties.node import workers
from parties.node.checks import check_job, valid_job_id
from parties.node.config import NodeConfig
from parties.node.store import NodeRecord, NodeStore, file_store
from parties.procs import PortHold, kill_group, kill_stale_worker
from parties.worker import links
from protocols import constants as C
from protocols.constants import JobState
from protocols.errors import NotFoundError, RefusedError, SafehouseError, SpecError, UnavailableError
from protocols.messages import Artifact, Endpoint, Outputs, PartyStatus, Prepared

log = logging.getLogger("safehouse.node")


@dataclass
class NodeJob:
    """One job at this node: its persisted record plus what only lives in this process."""

    record: NodeRecord
    spec: JobSpec
    job_dir: Path
    dataset_dir: Path | None = None
    schema: sch.Schema | None = None  # as read when the job was checked
    worker: workers.Worker | None = None
    ports: PortHold | None = None  # this job's link ports, held from prepare until its sidecar has them
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_contact: float = field(default_factory=time.monotonic)  # the coordinator's latest call about it

    @property
    def state(self) -> JobState:
        return self.record.state

    def status(self, party: str) -> PartyStatus:
        r = self.record
        return PartyStatus(party, r.job_id, r.state, r.stage, r.detail, r.worker_pid, r.updated_at, r.audit_hash)


Launcher = Callable[[Path, dict[str, Any]], workers.Worker]


class JobManager:
    def __init__(
        self, config: NodeConfig, store: NodeStore | None = None, launch: Launcher = workers.launch,
        after_worker: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.store = store or file_store(config.party_home.jobs_dir)
        # How a worker process starts: the SecretFlow worker, or a stand-in in unit tests.
        self.launch = launch
        # Called whenever a worker has ended (the node warms its next standby then).
        self.after_worker = after_worker
        self.jobs: dict[str, NodeJob] = {}
        self.lock = threading.Lock()
        self.audit = audit.party_log(config.home, config.party, config.key_dir)
        self._load()

    # -- control plane ---------------------------------------------------------
    def prepare(self, job_id: str, spec_yaml: str) -> Prepared:
        if not valid_job_id(job_id):
            raise SpecError(f"job id {job_id!r} is invalid")
        spec = registry.loads_spec(spec_yaml, f"job {job_id} spec")
        with self.lock:
            if job_id in self.jobs:
                raise RefusedError(f"job {job_id} is already known here")
        party = self.config.party
        me = spec.party(party) if party in spec.party_names else None
        self.audit.append("job_request", job_id, {
            "spec_sha256": spec.sha256, "job_type": spec.job_type, "purpose": spec.purpose,
            "partners": [p for p in spec.party_names if p != party],
            "dataset": me.dataset if me else None, "columns": list(me.features) if me else [],
        })  # fmt: skip
        try:
            checked = check_job(self.config, spec)
            pol = policy.load(self.config.party_home.root, party)
            decision = pol.decide(spec)
            if not decision.allowed:
                raise RefusedError(decision.reason)
        except SafehouseError as e:
            self.audit.append("policy_decision", job_id, {"allowed": False, "reason": e.public})
            raise
        self.audit.append("policy_decision", job_id, {"allowed": True, "outputs": list(decision.outputs)})
        fp = dataset.fingerprint(checked.dataset_dir)
        audit_hash = self.audit.append("dataset_fingerprint", job_id, dict(fp.__dict__))
        me_in_federation = self.config.federation().party(party)
        # Held, not just chosen: another job starting on this host meanwhile cannot take them.
        try:
            ports = PortHold.take(2, me_in_federation.host or "0.0.0.0", me_in_federation.worker_ports)
        except OSError as e:
            raise UnavailableError(f"party {party!r} has no two free worker ports now ({e}); retry later") from e
        link_port, spu_port = ports.ports
        endpoint = Endpoint(party, me_in_federation.host or self.config.advertise_host, link_port, spu_port)
        job_dir = self.config.party_home.job_dir(job_id)
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
        except OSError:
            ports.release()
            raise
        record = NodeRecord(job_id, spec_yaml, JobState.QUEUED, "", "accepted", time.time(), audit_hash, 0, endpoint,
                            decision.outputs, pol.min_cell_size)  # fmt: skip
        job = NodeJob(record, spec, job_dir, checked.dataset_dir, checked.schema, ports=ports)
        with self.lock:
            self.jobs[job_id] = job
        self.store.save(record)
        self._verify_consent_ahead(job)
        log.info("job %s accepted: %s over %s", job_id, spec.job_type, spec.party(party).dataset)
        return Prepared(endpoint, fp, audit_hash)

    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus:
        job = self._job(job_id)
        with job.lock:
            if job.state is not JobState.QUEUED or job.record.endpoint is None or job.dataset_dir is None:
                raise RefusedError(f"job {job_id} is {job.state.value}, not queued")
            cluster = self._peers(job, cluster)
            self._consent(job)
            self.audit.append(
                "job_start", job_id, {"cluster": {e.party: f"{e.host}:{e.link_port},{e.spu_port}" for e in cluster}}
            )
            if not self.config.secure and job.ports is not None:
                # Without TLS the worker's own links bind these ports, and they do not share.
                job.ports.release()
            job.worker = self.launch(job.job_dir, self._worker_config(job, cluster))
            self._update(job, state=JobState.RUNNING, stage=C.STAGE_INIT, detail="worker started",
                         worker_pid=job.worker.proc.pid, started_at=time.time())  # fmt: skip
        threading.Thread(target=self._watch, args=(job,), name=f"watch-{job_id}", daemon=True).start()
        return job.status(self.config.party)

    def status(self, job_id: str) -> PartyStatus:
        job = self._job(job_id)
        with job.lock:
            if job.state is JobState.RUNNING and job.worker is not None and job.worker.proc.poll() is None:
                stage, detail = workers.progress(job.job_dir)
                if stage and (stage, detail) != (job.record.stage, job.record.detail):
                    # Progress is not persisted: it changes often and a restart forgets it anyway.
                    job.record = replace(job.record, stage=stage, detail=detail, updated_at=time.time())
            return job.status(self.config.party)

    def outputs(self, job_id: str) -> Outputs:
        """What this node releases, once, after the job SUCCEEDED everywhere."""
        job = self._job(job_id)
        with job.lock:
            if job.state is not JobState.SUCCEEDED:
                raise RefusedError(f"job {job_id} is {job.state.value}: outputs leave only after it succeeded")
            if job.record.released:
                raise RefusedError(f"the outputs of job {job_id} were released already; they leave once")
            self._update(job, released=True)
        result = ProgramResult.from_json((job.job_dir / C.WORKER_RESULT).read_text())
        declared = registry.get(job.spec.job_type).outputs
        g = gate.release(declared, job.record.outputs_allowed, job.record.min_cell_size, result.metrics,
                         result.artifacts, result.model_parts, job.job_dir / C.OUTPUTS_DIR)  # fmt: skip
        for note in g.notes:
            log.warning("job %s: output withheld: %s", job_id, note)
        audit_hash = self.audit.append("output_release", job_id, {
            "released": {a.name: a.sha256 for a in g.artifacts}, "metrics": sorted(g.metrics),
            "model_parts": g.model_parts, "withheld": list(g.withheld), "suppressed_cells": g.suppressed_cells,
            "withheld_firms": result.withheld_firms,
        })  # fmt: skip
        return Outputs(
            party=self.config.party,
            metrics=g.metrics,
            artifacts=tuple(Artifact(a.name, a.media_type, a.data, a.sha256) for a in g.artifacts),
            model_parts=g.model_parts,
            stage_seconds=dict(result.stage_seconds),
            audit_hash=audit_hash,
            security=dict(result.security) | self._controls(job, result.withheld_firms, g.withheld),
        )

    @staticmethod
    def _controls(job: NodeJob, withheld_firms: int, withheld: tuple[str, ...]) -> dict[str, str]:
        """The controls this node applied, in words, for the job's validation report."""
        r = job.record
        return {
            "policy": f"outputs granted: {', '.join(r.outputs_allowed) or 'none'}; min_cell_size {r.min_cell_size}",
            "consent": f"authorisation-required values withheld for {withheld_firms} firm(s)",
            "withheld_outputs": ", ".join(withheld) or "none",
        }

    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus:
        if not state.terminal:
            raise SpecError(f"conclude needs a terminal state, got {state.value}")
        job = self._job(job_id)
        with job.lock:
            if job.state.terminal:
                return job.status(self.config.party)  # idempotent: the first terminal state stands
            if state is JobState.SUCCEEDED and not (job.job_dir / C.WORKER_RESULT).is_file():
                raise RefusedError(f"job {job_id} cannot succeed here: the worker has not finished")
            self._stop_worker(job)
            self._end(job, state, C.STAGE_DONE if state is JobState.SUCCEEDED else job.record.stage, reason)
        return job.status(self.config.party)

    def shutdown(self) -> None:
        """Stop every worker: a node never leaves one behind."""
        with self.lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            with job.lock:
                if not job.state.terminal:
                    self._stop_worker(job)
                    self._end(job, JobState.FAILED, job.record.stage, "node shut down")
            if job.state is JobState.FAILED:
                self._cleanup(job, JobState.FAILED)

    # -- internals -------------------------------------------------------------
    def _load(self) -> None:
        """Read the store back: finished jobs answer again; unfinished ones failed with this node."""
        for record in self.store.load_all():
            spec = registry.loads_spec(record.spec_yaml, f"job {record.job_id} spec")
            job = NodeJob(record, spec, self.config.party_home.job_dir(record.job_id))
            self.jobs[record.job_id] = job
            if not record.state.terminal:
                self._stop_worker(job)
                self._end(job, JobState.FAILED, record.stage, "node restarted while the job ran")

    def _worker_config(self, job: NodeJob, cluster: list[Endpoint]) -> dict[str, Any]:
        fed, tls = self.config.federation(), self.config.tls
        return {
            "job_id": job.record.job_id, "party": self.config.party, "spec_yaml": job.spec.to_yaml(),
            "cluster": [e.__dict__ for e in cluster], "dataset_dir": str(job.dataset_dir),
            "model_dir": str(self.config.party_home.model_dir(job.record.job_id)),
            "tls": None if tls is None else {"ca": str(tls.ca), "cert": str(tls.cert), "key": str(tls.key)},
            "identities": {p: fed.party(p).identity for p in job.spec.party_names},
            "bind_host": fed.party(self.config.party).host,
        }  # fmt: skip

    def _peers(self, job: NodeJob, cluster: list[Endpoint]) -> list[Endpoint]:
        """The job's peers at the hosts this party's own federation file names; the
        caller supplies only ports, each inside the range that peer's entry allows."""
        parties = sorted(e.party for e in cluster)
        if parties != sorted(job.spec.party_names):
            raise SpecError(f"cluster parties {parties} do not match the job's {sorted(job.spec.party_names)}")
        fed = self.config.federation()
        peers = []
        for e in cluster:
            member = fed.party(e.party)
            if not (member.allows_port(e.link_port) and member.allows_port(e.spu_port)):
                raise SpecError(f"ports given for {e.party!r} are outside its federation entry's worker_ports")
            peers.append(Endpoint(e.party, member.host, e.link_port, e.spu_port))
        mine = next(e for e in peers if e.party == self.config.party)
        reserved = job.record.endpoint
        if reserved is None or (mine.link_port, mine.spu_port) != (reserved.link_port, reserved.spu_port):
            raise SpecError("cluster gives this party other ports than it reserved")
        return peers

    def _verify_consent_ahead(self, job: NodeJob) -> None:
        """Verify the consent book's signatures now, while the other parties prepare: ``start`` reads
        the book again (a revocation up to then applies) and verifies only what was appended since."""
        spec, party = job.spec, self.config.party
        if spec.label_party == party or job.schema is None:
            return
        if consent.gated_columns(job.schema, spec.party(party).features):
            with contextlib.suppress(SafehouseError):  # a bad book fails the job at start, as it always did
                consent.ConsentBook.load(self.config.party_home.root, self.config.home.trust_dir)

    def _consent(self, job: NodeJob) -> None:
        """Write this job's authorised-firm list for the worker; log the summary.

        The book is read now, at job start, so a revocation applies from the
        next job. The label owner's own data needs no firm authorisation here.
        """
        spec, party = job.spec, self.config.party
        if spec.label_party == party or job.schema is None:
            return
        gated = consent.gated_columns(job.schema, spec.party(party).features)
        if not gated:
            return
        book = consent.ConsentBook.load(self.config.party_home.root, self.config.home.trust_dir)
        allowed = book.authorised(spec.label_party, spec.purpose)
        write_atomic(job.job_dir / CONSENT_FILE, json.dumps({"columns": gated, "authorised": sorted(allowed)}))
        self.audit.append("consent_applied", job.record.job_id, {
            "book_sha256": book.sha256, "grantee": spec.label_party, "purpose": spec.purpose, "columns": gated,
            "authorised_firms": len(allowed),
        })  # fmt: skip

    def _job(self, job_id: str) -> NodeJob:
        """A job the coordinator is asking about; every such call renews the node's lease on it."""
        with self.lock:
            if job_id not in self.jobs:
                raise NotFoundError(f"no job {job_id!r} at party {self.config.party!r}")
            job = self.jobs[job_id]
        job.last_contact = time.monotonic()
        return job

    # -- leases and deadlines --------------------------------------------------
    def start_watchdog(self, every: float = 1.0) -> None:
        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.expire()
                except Exception:
                    log.exception("lease watchdog")

        threading.Thread(target=loop, name="lease-watchdog", daemon=True).start()

    def expire(self, now: float | None = None) -> list[str]:
        """Fail every job whose lease ran out (the coordinator fell silent) or whose deadline passed."""
        mono, wall = now if now is not None else time.monotonic(), time.time()
        with self.lock:
            open_jobs = [j for j in self.jobs.values() if not j.state.terminal]
        ended = []
        for job in open_jobs:
            silent = mono - job.last_contact
            started = job.record.started_at
            reason = ""
            if silent > self.config.lease_seconds:
                reason = f"lease expired: the coordinator was silent for {silent:.0f}s"
            elif started and wall - started > job.spec.deadline_minutes * 60:
                reason = f"deadline of {job.spec.deadline_minutes} minutes passed"
            if reason:
                with job.lock:
                    if job.state.terminal:
                        continue
                    self._stop_worker(job)
                    self._end(job, JobState.FAILED, job.record.stage, reason)
                ended.append(job.record.job_id)
        return ended

    def _update(self, job: NodeJob, **changes: object) -> None:
        job.record = replace(job.record, updated_at=time.time(), **changes)  # type: ignore[arg-type]
        self.store.save(job.record)

    def _end(self, job: NodeJob, state: JobState, stage: str, detail: str) -> None:
        # Clean up first: whoever reads the terminal state finds key files and partial parts gone.
        self._cleanup(job, state)
        audit_hash = self.audit.append("job_end", job.record.job_id, {"state": state.value, "reason": detail})
        self._update(job, state=state, stage=stage, detail=detail, worker_pid=0, audit_hash=audit_hash)
        log.info("job %s -> %s (%s) %s", job.record.job_id, state.value, stage, detail)

    def _watch(self, job: NodeJob) -> None:
        if job.worker is None:
            return
        rc = job.worker.proc.wait()
        job.worker.release()
        if self.after_worker is not None:
            threading.Thread(target=self.after_worker, name="after-worker", daemon=True).start()
        with job.lock:
            if job.state.terminal:
                return
            if rc == 0 and (job.job_dir / C.WORKER_RESULT).is_file():
                # Finished here; SUCCEEDED waits for the coordinator's word.
                self._update(job, stage=C.STAGE_DONE, detail="worker finished", worker_pid=0)
                return
            self._end(job, JobState.FAILED, job.record.stage, workers.failure_reason(job.job_dir, rc))

    @staticmethod
    def _stop_worker(job: NodeJob) -> None:
        if job.worker is not None:
            kill_group(job.worker.proc)
            job.worker.release()
        elif job.record.worker_pid:
            # A worker from before this node (re)started: end it only if it is this job's.
            kill_stale_worker(job.record.worker_pid, job.job_dir)

    def _cleanup(self, job: NodeJob, state: JobState) -> None:
        # Key files and the authorised-firm list go whatever the outcome. Failed
        # jobs drop partial model parts so nothing half-written is taken for a model.
        model_dir = self.config.party_home.model_dir(job.record.job_id)
        discard_transient(job.job_dir, model_dir, keep_model=state is JobState.SUCCEEDED)
        links.remove_socket_dir(job.job_dir)
        if job.ports is not None:
            job.ports.release()
