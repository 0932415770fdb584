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

from enclave import jobspec
from enclave import schema as sch
from enclave.errors import NotFoundError, RefusedError, SafehouseError, SpecError
from enclave.procs import free_ports, kill_group, write_atomic
from parties.node.config import NodeConfig
from protocols import constants as C
from protocols.constants import JobState
from protocols.messages import Artifact, Endpoint, Fingerprint, Outputs, PartyStatus, Prepared

log = logging.getLogger("safehouse.node")
_JOB_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")

# Outputs a joint_train job declares; nothing else leaves the node.
DECLARED_ARTIFACTS = {"roc.png", "ks_sgb.png", "ks_sslr.png", "ks_bank_only.png"}


@dataclass
class NodeJob:
    job_id: str
    spec: jobspec.JobSpec
    dataset_dir: Path
    job_dir: Path
    endpoint: Endpoint
    status: PartyStatus
    proc: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class JobManager:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.jobs: dict[str, NodeJob] = {}
        self.lock = threading.Lock()

    # -- checks ----------------------------------------------------------------
    def _check(self, spec: jobspec.JobSpec) -> Path:
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
        return ds_dir

    # -- control plane ---------------------------------------------------------
    def prepare(self, job_id: str, spec_yaml: str) -> Prepared:
        if not job_id or not set(job_id) <= _JOB_ID_CHARS or len(job_id) > 64:
            raise SpecError(f"job id {job_id!r} is invalid")
        spec = jobspec.loads(spec_yaml, f"job {job_id} spec")
        with self.lock:
            if job_id in self.jobs:
                raise RefusedError(f"job {job_id} is already known here")
        ds_dir = self._check(spec)
        fp = sch.fingerprint(ds_dir)
        link_port, spu_port = free_ports(2)
        endpoint = Endpoint(self.config.party, self.config.advertise_host, link_port, spu_port)
        job_dir = self.config.party_home.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=False)
        status = PartyStatus(self.config.party, job_id, JobState.QUEUED, "", "accepted", 0, time.time())
        job = NodeJob(job_id, spec, ds_dir, job_dir, endpoint, status)
        with self.lock:
            self.jobs[job_id] = job
        self._persist(job)
        log.info("job %s accepted: %s over %s", job_id, spec.job_type, spec.party(self.config.party).dataset)
        return Prepared(endpoint, Fingerprint(fp.dataset, fp.sha256, fp.schema_sha256, fp.rows, fp.columns))

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
        artifacts = []
        for name in result.get("artifacts", []):
            if name not in DECLARED_ARTIFACTS:
                log.warning("job %s: undeclared output %r withheld", job_id, name)
                continue
            data = (job.job_dir / "outputs" / name).read_bytes()
            artifacts.append(Artifact(name, "image/png", data, _sha256(data)))
        metrics = {k: float(v) for k, v in result.get("metrics", {}).items()}
        metrics["psi_intersection"] = float(result["psi"]["intersection"])
        return Outputs(
            party=self.config.party,
            metrics=metrics,
            artifacts=tuple(artifacts),
            model_parts={k: str(v) for k, v in result.get("model_parts", {}).items()},
            stage_seconds={k: float(v) for k, v in result.get("stage_seconds", {}).items()},
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
        job.status = PartyStatus(self.config.party, job.job_id, state, stage, detail, pid, time.time())
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
        for name in ("psi_in.csv", "psi_out.csv"):
            (job.job_dir / name).unlink(missing_ok=True)
        if state is not JobState.SUCCEEDED:
            shutil.rmtree(self.config.party_home.model_dir(job.job_id), ignore_errors=True)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def describe(e: Exception) -> str:
    return e.public if isinstance(e, SafehouseError) else f"internal error ({type(e).__name__})"
