"""The coordinator's job state machine, free of gRPC (nodes sit behind ``NodeLink``)."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from enclave import jobspec
from enclave.audit import AuditLog
from enclave.errors import NotFoundError, SafehouseError, SpecError
from enclave.procs import write_atomic
from enclave.tracking import Tracker
from protocols.constants import JobState
from protocols.messages import Endpoint, JobStatus, Outputs, PartyStatus, Prepared

log = logging.getLogger("safehouse.coordinator")


class NodeLink(Protocol):
    """What the coordinator needs of a node; gRPC in production, anything in tests."""

    def prepare(self, job_id: str, spec_yaml: str) -> Prepared: ...
    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus: ...
    def status(self, job_id: str) -> PartyStatus: ...
    def outputs(self, job_id: str) -> Outputs: ...
    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus: ...


@dataclass
class CoordJob:
    job_id: str
    spec: jobspec.JobSpec
    links: dict[str, NodeLink]
    state: JobState = JobState.QUEUED
    stage: str = "queued"
    detail: str = ""
    parties: dict[str, PartyStatus] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    audit_hashes: list[str] = field(default_factory=list)
    node_entries: dict[str, list[str]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def new_job_id(name: str) -> str:
    return f"{name[:24]}-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


class Coordinator:
    def __init__(
        self,
        state_dir: Path,
        links: Mapping[str, NodeLink],
        tracker: Callable[[], Tracker] | None,
        audit_log: AuditLog | None = None,
        poll_seconds: float = 0.5,
        unreachable_seconds: float = 30.0,
        link_factory: Callable[[str, str], NodeLink] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.links = dict(links)
        # Reaches a party named only by the endpoint in a job spec (remote deployments).
        self.link_factory = link_factory
        self.tracker = tracker
        self.audit = audit_log
        self.poll_seconds = poll_seconds
        self.unreachable_seconds = unreachable_seconds
        self.jobs: dict[str, CoordJob] = {}
        self.lock = threading.Lock()

    # -- API -------------------------------------------------------------------
    def submit(self, spec_yaml: str) -> JobStatus:
        spec = jobspec.loads(spec_yaml, "submitted job spec")
        links: dict[str, NodeLink] = {}
        for p in spec.parties:
            if p.name in self.links:
                links[p.name] = self.links[p.name]
            elif p.endpoint is not None and self.link_factory is not None:
                links[p.name] = self.link_factory(p.name, p.endpoint)
        unknown = [p for p in spec.party_names if p not in links]
        if unknown:
            raise SpecError(
                f"parties {unknown} are not known to this coordinator (known: {sorted(self.links)}) "
                "and the spec gives no endpoint for them"
            )
        job = CoordJob(new_job_id(spec.name), spec, links)
        self._audit(job, "job_submitted", {"name": spec.name, "spec_sha256": spec.sha256, "parties": spec.party_names})
        with self.lock:
            self.jobs[job.job_id] = job
        self._persist(job)
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.job_id}", daemon=True).start()
        log.info("job %s queued (%s)", job.job_id, spec.name)
        return self._status(job)

    def status(self, job_id: str) -> JobStatus:
        return self._status(self._job(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        job.cancel.set()
        job.done.wait(timeout=30)
        return self._status(job)

    def shutdown(self) -> None:
        with self.lock:
            jobs = [j for j in self.jobs.values() if not j.state.terminal]
        for j in jobs:
            j.cancel.set()
        for j in jobs:
            j.done.wait(timeout=30)

    # -- the job ---------------------------------------------------------------
    def _run(self, job: CoordJob) -> None:
        tracker: Tracker | None = None
        run_id = ""
        names = job.spec.party_names
        prepared: dict[str, Prepared] = {}

        def open_run() -> None:
            # The MLflow run opens once workers are starting, so its set-up
            # overlaps theirs; a job that never got that far still gets a run.
            nonlocal tracker, run_id
            if self.tracker is None or run_id:
                return
            tracker = self.tracker()
            run_id = tracker.start(job.job_id, job.spec)
            job.result["mlflow"] = {"tracking_uri": tracker.uri, "run_id": run_id}
            if "fingerprints" in job.result:
                tracker.log_fingerprints(run_id, {n: p.fingerprint for n, p in prepared.items()})

        try:
            self._set(job, JobState.QUEUED, "prepare", "asking every party to check the job")
            spec_yaml = job.spec.to_yaml()
            for name in names:
                try:
                    prepared[name] = job.links[name].prepare(job.job_id, spec_yaml)
                except SafehouseError as e:
                    raise _Abort(JobState.FAILED, f"party {name!r} refused the job: {e.public}") from None
            fps = {n: p.fingerprint for n, p in prepared.items()}
            job.result["fingerprints"] = {n: f.__dict__ for n, f in fps.items()}
            self._audit(
                job,
                "parties_prepared",
                {"fingerprints": {n: f.sha256 for n, f in fps.items()}},
                {n: [p.audit_hash] for n, p in prepared.items()},
            )
            cluster = [prepared[n].endpoint for n in names]
            t0 = time.perf_counter()
            for name in names:
                try:
                    job.parties[name] = job.links[name].start(job.job_id, cluster)
                except SafehouseError as e:
                    raise _Abort(JobState.FAILED, f"party {name!r} could not start: {e.public}") from None
            open_run()
            self._set(job, JobState.RUNNING, "running", "workers started")
            self._supervise(job)
            outputs = {n: job.links[n].outputs(job.job_id) for n in names}
            self._audit(
                job,
                "outputs_received",
                {"artifacts": {n: {a.name: a.sha256 for a in o.artifacts} for n, o in outputs.items()}},
                {n: [o.audit_hash] for n, o in outputs.items()},
            )
            job.result.update(self._summarise(job, outputs, time.perf_counter() - t0))
            if tracker is not None:
                tracker.log_outputs(run_id, outputs)
                tracker.log_metrics(run_id, {"seconds.total": time.perf_counter() - t0})
                job.result["mlflow"]["models"] = self._register(tracker, run_id, job, outputs)
                self._audit(
                    job, "model_registered", {"mlflow_run_id": run_id, "models": job.result["mlflow"]["models"]}
                )
            for name in names:
                job.parties[name] = job.links[name].conclude(job.job_id, JobState.SUCCEEDED, "all parties finished")
            self._set(job, JobState.SUCCEEDED, "done", "all parties finished")
        except _Abort as a:
            self._abort(job, list(prepared), a.state, a.reason)
        except Exception as e:
            log.exception("job %s failed in the coordinator", job.job_id)
            reason = e.public if isinstance(e, SafehouseError) else f"coordinator error ({type(e).__name__})"
            self._abort(job, list(prepared), JobState.FAILED, reason)
        finally:
            try:
                open_run()
            except Exception:
                log.exception("job %s: could not open its MLflow run", job.job_id)
            ended = {n: [s.audit_hash] for n, s in job.parties.items() if s.state.terminal and s.audit_hash}
            end_body = {"state": job.state.value, "reason": job.detail, "mlflow_run_id": run_id}
            self._audit(job, "job_end", end_body, ended)
            if tracker is not None and run_id:
                try:
                    # Experiment log and audit trail name each other both ways.
                    for party, hashes in job.node_entries.items():
                        tracker.client.set_tag(run_id, f"safehouse.audit.{party}", ",".join(hashes))
                    tracker.client.set_tag(run_id, "safehouse.audit.coordinator", ",".join(job.audit_hashes))
                    tracker.finish(run_id, job.state.value)
                except Exception:
                    log.exception("job %s: could not close its MLflow run", job.job_id)
            self._persist(job)
            job.done.set()

    def _supervise(self, job: CoordJob) -> None:
        """Poll nodes until all finished; raise _Abort on failure or cancel."""
        names = job.spec.party_names
        last_seen = {n: time.monotonic() for n in names}
        while True:
            if job.cancel.is_set():
                raise _Abort(JobState.CANCELLED, "cancelled by request")
            for name in names:
                try:
                    st = job.links[name].status(job.job_id)
                except SafehouseError as e:
                    if time.monotonic() - last_seen[name] > self.unreachable_seconds:
                        raise _Abort(JobState.FAILED, f"party {name!r} unreachable: {e.public}") from None
                    continue
                last_seen[name] = time.monotonic()
                job.parties[name] = st
                if st.state in (JobState.FAILED, JobState.CANCELLED):
                    raise _Abort(JobState.FAILED, f"party {name!r} failed: {st.detail}")
            statuses = [job.parties[n] for n in names]
            if all(s.state is JobState.RUNNING and s.stage == "done" for s in statuses):
                return
            lead = max(statuses, key=lambda s: s.updated_at)
            self._set(job, JobState.RUNNING, lead.stage, f"[{lead.party}] {lead.detail}", quiet=True)
            job.cancel.wait(self.poll_seconds)

    def _abort(self, job: CoordJob, parties: list[str], state: JobState, reason: str) -> None:
        log.warning("job %s ending %s: %s", job.job_id, state.value, reason)
        for name in parties:
            try:
                job.parties[name] = job.links[name].conclude(job.job_id, state, reason)
            except SafehouseError as e:
                log.warning("job %s: could not conclude at %s: %s", job.job_id, name, e)
        self._set(job, state, job.stage, reason)

    def _summarise(self, job: CoordJob, outputs: Mapping[str, Outputs], seconds: float) -> dict[str, Any]:
        label = outputs[job.spec.label_party]
        models = {}
        for kind in job.spec.models:
            if f"{kind}_auc" in label.metrics:
                models[kind] = {"auc": label.metrics[f"{kind}_auc"], "ks": label.metrics[f"{kind}_ks"]}
        psi_seconds = max(o.stage_seconds.get("psi", 0.0) for o in outputs.values())
        return {
            "psi": {"intersection": int(label.metrics["psi_intersection"]), "seconds": psi_seconds},
            "models": models,
            "seconds": round(seconds, 3),
            "stage_seconds": {p: o.stage_seconds for p, o in outputs.items()},
            "test_rows": int(label.metrics.get("test_rows", 0)),
            "peak_rss_mb": {p: o.metrics.get("peak_rss_mb", 0.0) for p, o in outputs.items()},
        }

    def _register(self, tracker: Tracker, run_id: str, job: CoordJob, outputs: Mapping[str, Outputs]) -> dict[str, Any]:
        out = {}
        for kind in ("sgb", "sslr"):
            if getattr(job.spec, kind) is None:
                continue
            manifest = {
                "model": kind,
                "job_id": job.job_id,
                "spec_sha256": job.spec.sha256,
                "label_party": job.spec.label_party,
                "key": job.spec.key,
                "parties": {
                    p.name: {
                        "part_sha256": outputs[p.name].model_parts.get(kind, ""),
                        "location": f"party-local: models/{job.job_id}/{kind}",
                        "features": list(p.features),
                        "dataset_sha256": job.result["fingerprints"][p.name]["sha256"],
                    }
                    for p in job.spec.parties
                },
            }
            name = f"{job.spec.name}-{kind}"
            out[kind] = {"name": name, "version": tracker.register(run_id, name, manifest)}
        return out

    # -- bookkeeping -----------------------------------------------------------
    def _audit(
        self, job: CoordJob, kind: str, body: dict[str, Any], node_entries: dict[str, list[str]] | None = None
    ) -> str:
        if self.audit is None:
            return ""
        refs = {p: [h for h in hs if h] for p, hs in (node_entries or {}).items()}
        refs = {p: hs for p, hs in refs.items() if hs}
        for p, hs in refs.items():
            job.node_entries.setdefault(p, []).extend(hs)
        h = self.audit.append(kind, job.job_id, {**body, "node_entries": refs} if refs else body)
        job.audit_hashes.append(h)
        return h

    def _job(self, job_id: str) -> CoordJob:
        with self.lock:
            if job_id not in self.jobs:
                raise NotFoundError(f"no job {job_id!r}")
            return self.jobs[job_id]

    def _set(self, job: CoordJob, state: JobState, stage: str, detail: str, quiet: bool = False) -> None:
        changed = (state, stage, detail) != (job.state, job.stage, job.detail)
        job.state, job.stage, job.detail = state, stage, detail
        if changed and not quiet:
            log.info("job %s -> %s (%s) %s", job.job_id, state.value, stage, detail)
            self._persist(job)

    def _status(self, job: CoordJob) -> JobStatus:
        parties = tuple(job.parties[n] for n in job.spec.party_names if n in job.parties)
        result = json.dumps(job.result, sort_keys=True) if job.state is JobState.SUCCEEDED else ""
        return JobStatus(job.job_id, job.state, job.stage, job.detail, parties, result)

    def _persist(self, job: CoordJob) -> None:
        doc = {
            "job_id": job.job_id,
            "state": job.state.value,
            "stage": job.stage,
            "detail": job.detail,
            "spec": job.spec.to_dict(),
            "result": job.result,
            "parties": {n: {"state": s.state.value, "detail": s.detail} for n, s in job.parties.items()},
        }
        write_atomic(self.state_dir / "jobs" / f"{job.job_id}.json", json.dumps(doc, indent=1, default=str))


class _Abort(Exception):
    def __init__(self, state: JobState, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason
