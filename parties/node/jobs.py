"""The node's job manager: checks, worker lifecycle and state, free of gRPC.

States move QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. A node sets
FAILED itself when its worker fails; SUCCEEDED, and FAILED or CANCELLED
caused elsewhere, come from the coordinator's ``conclude``, so every side ends
in the same state. Leaving a terminal state is impossible.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from enclave import audit, consent, gate, jobspec, policy
from enclave import schema as sch
from enclave.errors import NotFoundError, RefusedError, SafehouseError, SpecError
from enclave.procs import free_ports, kill_group, write_atomic
from parties.node.config import NodeConfig
from protocols import constants as C
from protocols.constants import JobState
from protocols.messages import Artifact, Endpoint, Outputs, PartyStatus, Prepared

log = logging.getLogger("safehouse.node")
_JOB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
CONSENT_FILE = "consent.json"


@dataclass
class NodeJob:
    job_id: str
    spec: jobspec.JobSpec
    dataset_dir: Path
    schema: sch.Schema  # as read when the job was checked
    job_dir: Path
    endpoint: Endpoint
    status: PartyStatus
    outputs_allowed: tuple[str, ...] = ()
    min_cell_size: int = 10
    proc: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class JobManager:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.jobs: dict[str, NodeJob] = {}
        self.lock = threading.Lock()
        self.audit = audit.party_log(config.home, config.party)

    # -- checks ----------------------------------------------------------------
    def _check(self, spec: jobspec.JobSpec) -> tuple[Path, sch.Schema]:
        party = self.config.party
        if spec.job_type not in self.config.job_types:
            raise RefusedError(f"party {party!r} has not installed job type {spec.job_type!r}")
        if party not in spec.party_names:
            raise RefusedError(f"party {party!r} is not a party of this job")
        me = spec.party(party)
        ds_dir = self.config.party_home.dataset_dir(me.dataset)
        if not (ds_dir / sch.SCHEMA_FILE).is_file():
            raise RefusedError(f"party {party!r} holds no dataset {me.dataset!r}")
        schema = sch.read_schema(ds_dir)
        if spec.key != schema.key:
            raise RefusedError(f"dataset {me.dataset!r} of {party!r} is keyed by {schema.key!r}, not {spec.key!r}")
        unknown = [c for c in me.features if c not in schema.by_name]
        if unknown:
            raise RefusedError(f"dataset {me.dataset!r} of {party!r} has no column(s) {unknown}")
        not_features = [c for c in me.features if schema.by_name[c].role != "feature"]
        if not_features:
            raise RefusedError(f"column(s) {not_features} of {me.dataset!r} are not declared as features")
        if spec.label_party == party and (
            spec.label not in schema.by_name or schema.by_name[spec.label].role != "label"
        ):
            raise RefusedError(f"dataset {me.dataset!r} of {party!r} has no label column {spec.label!r}")
        return ds_dir, schema

    # -- control plane ---------------------------------------------------------
    def prepare(self, job_id: str, spec_yaml: str) -> Prepared:
        if not job_id or not set(job_id) <= _JOB_ID_CHARS or len(job_id) > 64:
            raise SpecError(f"job id {job_id!r} is invalid")
        spec = jobspec.loads(spec_yaml, f"job {job_id} spec")
        with self.lock:
            if job_id in self.jobs:
                raise RefusedError(f"job {job_id} is already known here")
        party = self.config.party
        me = spec.party(party) if party in spec.party_names else None
        self.audit.append(
            "job_request",
            job_id,
            {
                "spec_sha256": spec.sha256,
                "job_type": spec.job_type,
                "purpose": spec.purpose,
                "partners": [p for p in spec.party_names if p != party],
                "dataset": me.dataset if me else None,
                "columns": list(me.features) if me else [],
            },
        )
        try:
            ds_dir, schema = self._check(spec)
            pol = policy.load(self.config.party_home.root, party)
            decision = pol.decide(spec)
            if not decision.allowed:
                raise RefusedError(decision.reason)
        except SafehouseError as e:
            self.audit.append("policy_decision", job_id, {"allowed": False, "reason": e.public})
            raise
        self.audit.append("policy_decision", job_id, {"allowed": True, "outputs": list(decision.outputs)})
        fp = sch.fingerprint(ds_dir)
        audit_hash = self.audit.append("dataset_fingerprint", job_id, dict(fp.__dict__))
        link_port, spu_port = free_ports(2)
        endpoint = Endpoint(party, self.config.advertise_host, link_port, spu_port)
        job_dir = self.config.party_home.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=False)
        status = PartyStatus(party, job_id, JobState.QUEUED, "", "accepted", 0, time.time(), audit_hash)
        job = NodeJob(job_id, spec, ds_dir, schema, job_dir, endpoint, status, decision.outputs, pol.min_cell_size)
        with self.lock:
            self.jobs[job_id] = job
        self._persist(job)
        log.info("job %s accepted: %s over %s", job_id, spec.job_type, spec.party(party).dataset)
        return Prepared(endpoint, fp, audit_hash)

    def _consent(self, job: NodeJob) -> None:
        """Write this job's authorised-firm list for the worker; log the summary.

        The book is read now, at job start, so a revocation applies from the
        next job. The label owner's own data needs no firm authorisation here.
        """
        spec, party = job.spec, self.config.party
        if spec.label_party == party:
            return
        gated = consent.gated_columns(job.schema, spec.party(party).features)
        if not gated:
            return
        book = consent.ConsentBook.load(self.config.party_home.root, self.config.home.root / "trust")
        allowed = book.authorised(spec.label_party, spec.purpose)
        write_atomic(job.job_dir / CONSENT_FILE, json.dumps({"columns": gated, "authorised": sorted(allowed)}))
        self.audit.append(
            "consent_applied",
            job.job_id,
            {
                "book_sha256": book.sha256,
                "grantee": spec.label_party,
                "purpose": spec.purpose,
                "columns": gated,
                "authorised_firms": len(allowed),
            },
        )

    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus:
        job = self._job(job_id)
        with job.lock:
            if job.status.state is not JobState.QUEUED:
                raise RefusedError(f"job {job_id} is {job.status.state.value}, not queued")
            parties = sorted(e.party for e in cluster)
            if parties != sorted(job.spec.party_names):
                raise SpecError(f"cluster parties {parties} do not match the job's {sorted(job.spec.party_names)}")
            mine = next(e for e in cluster if e.party == self.config.party)
            if (mine.link_port, mine.spu_port) != (job.endpoint.link_port, job.endpoint.spu_port):
                raise SpecError("cluster gives this party other ports than it reserved")
            cfg = {
                "job_id": job_id,
                "party": self.config.party,
                "spec_yaml": job.spec.to_yaml(),
                "cluster": [e.__dict__ for e in cluster],
                "dataset_dir": str(job.dataset_dir),
                "model_dir": str(self.config.party_home.model_dir(job_id)),
            }
            write_atomic(job.job_dir / C.WORKER_CONFIG, json.dumps(cfg, indent=1))
            self._consent(job)
            self.audit.append(
                "job_start", job_id, {"cluster": {e.party: f"{e.host}:{e.link_port},{e.spu_port}" for e in cluster}}
            )
            logf = (job.job_dir / C.WORKER_LOG).open("wb")
            job.proc = subprocess.Popen(
                [sys.executable, "-m", "parties.worker", str(job.job_dir)],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: killed as a whole
                cwd=str(job.job_dir),
            )
            logf.close()
            self._set(job, JobState.RUNNING, C.STAGE_INIT, "worker started", job.proc.pid)
        threading.Thread(target=self._watch, args=(job,), name=f"watch-{job_id}", daemon=True).start()
        return job.status

    def status(self, job_id: str) -> PartyStatus:
        job = self._job(job_id)
        with job.lock:
            if job.status.state is JobState.RUNNING:
                stage, detail = self._progress(job)
                if stage and (stage, detail) != (job.status.stage, job.status.detail):
                    job.status = replace(job.status, stage=stage, detail=detail, updated_at=time.time())
            return job.status

    def outputs(self, job_id: str) -> Outputs:
        job = self._job(job_id)
        result_file = job.job_dir / C.WORKER_RESULT
        if not result_file.is_file():
            raise RefusedError(f"job {job_id} has no outputs here (state {job.status.state.value})")
        result = json.loads(result_file.read_text())
        g = gate.release(job.spec.job_type, job.outputs_allowed, job.min_cell_size, result, job.job_dir / "outputs")
        for note in g.notes:
            log.warning("job %s: output withheld: %s", job_id, note)
        audit_hash = self.audit.append(
            "output_release",
            job_id,
            {
                "released": {a.name: a.sha256 for a in g.artifacts},
                "metrics": sorted(g.metrics),
                "model_parts": g.model_parts,
                "withheld": list(g.withheld),
                "suppressed_cells": g.suppressed_cells,
                "withheld_firms": int(result.get("consent", {}).get("withheld_firms", 0)),
            },
        )
        return Outputs(
            party=self.config.party,
            metrics=g.metrics,
            artifacts=tuple(Artifact(a.name, a.media_type, a.data, a.sha256) for a in g.artifacts),
            model_parts=g.model_parts,
            stage_seconds={k: float(v) for k, v in result.get("stage_seconds", {}).items()},
            audit_hash=audit_hash,
        )

    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus:
        if not state.terminal:
            raise SpecError(f"conclude needs a terminal state, got {state.value}")
        job = self._job(job_id)
        with job.lock:
            if job.status.state.terminal:
                return job.status  # idempotent: the first terminal state stands
            if state is JobState.SUCCEEDED and not (job.job_dir / C.WORKER_RESULT).is_file():
                raise RefusedError(f"job {job_id} cannot succeed here: the worker has not finished")
            self._stop_worker(job)
            self._set(job, state, C.STAGE_DONE if state is JobState.SUCCEEDED else job.status.stage, reason, 0)
        self._cleanup(job, state)
        return job.status

    def shutdown(self) -> None:
        """Stop every worker: a node never leaves one behind."""
        with self.lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            with job.lock:
                if not job.status.state.terminal:
                    self._stop_worker(job)
                    self._set(job, JobState.FAILED, job.status.stage, "node shut down", 0)

    # -- internals -------------------------------------------------------------
    def _job(self, job_id: str) -> NodeJob:
        with self.lock:
            if job_id not in self.jobs:
                raise NotFoundError(f"no job {job_id!r} at party {self.config.party!r}")
            return self.jobs[job_id]

    def _set(self, job: NodeJob, state: JobState, stage: str, detail: str, pid: int) -> None:
        audit_hash = job.status.audit_hash
        if state.terminal:
            audit_hash = self.audit.append("job_end", job.job_id, {"state": state.value, "reason": detail})
        job.status = PartyStatus(self.config.party, job.job_id, state, stage, detail, pid, time.time(), audit_hash)
        self._persist(job)
        log.info("job %s -> %s (%s) %s", job.job_id, state.value, stage, detail)

    def _persist(self, job: NodeJob) -> None:
        s = job.status
        write_atomic(
            job.job_dir / "state.json",
            json.dumps(
                {
                    "job_id": s.job_id,
                    "state": s.state.value,
                    "stage": s.stage,
                    "detail": s.detail,
                    "updated_at": s.updated_at,
                }
            ),
        )

    @staticmethod
    def _progress(job: NodeJob) -> tuple[str, str]:
        events = job.job_dir / C.WORKER_EVENTS
        if not events.is_file():
            return "", ""
        last = ""
        with events.open("rb") as f:
            try:
                f.seek(-4096, 2)
            except OSError:
                f.seek(0)
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
            last = lines[-1] if lines else ""
        try:
            ev = json.loads(last)
            return str(ev["stage"]), str(ev["detail"])
        except (ValueError, KeyError):
            return "", ""

    def _watch(self, job: NodeJob) -> None:
        proc = job.proc
        if proc is None:
            return
        rc = proc.wait()
        with job.lock:
            if job.status.state.terminal:
                return
            if rc == 0 and (job.job_dir / C.WORKER_RESULT).is_file():
                # Finished here; SUCCEEDED waits for the coordinator's word.
                job.status = replace(
                    job.status, stage=C.STAGE_DONE, detail="worker finished", worker_pid=0, updated_at=time.time()
                )
                self._persist(job)
                return
            reason = self._failure_reason(job, rc)
            self._set(job, JobState.FAILED, job.status.stage, reason, 0)
        self._cleanup(job, JobState.FAILED)

    @staticmethod
    def _failure_reason(job: NodeJob, rc: int) -> str:
        err = job.job_dir / C.WORKER_ERROR
        if err.is_file():
            try:
                return f"worker failed: {json.loads(err.read_text())['public']}"
            except (ValueError, KeyError):
                pass
        how = f"signal {-rc}" if rc < 0 else f"code {rc}"
        return f"worker exited with {how}"

    @staticmethod
    def _stop_worker(job: NodeJob) -> None:
        if job.proc is not None:
            kill_group(job.proc)

    def _cleanup(self, job: NodeJob, state: JobState) -> None:
        # PSI files hold keys: remove them whatever the outcome. Failed jobs
        # drop partial model parts so nothing half-written is mistaken for a model.
        for name in ("psi_in.csv", "psi_out.csv", CONSENT_FILE):
            (job.job_dir / name).unlink(missing_ok=True)
        if state is not JobState.SUCCEEDED:
            shutil.rmtree(self.config.party_home.model_dir(job.job_id), ignore_errors=True)
