"""The coordinator's job state machine, free of gRPC (nodes sit behind ``NodeService``).

A job goes: every party checks it (prepare) -> every party starts its worker
-> the coordinator supervises until all are done, one fails, or a cancel comes
-> it fetches what each node releases, builds the summary and registers the
models the job type describes -> it concludes the job at every party with one
state. Every step is in the coordinator's audit trail; every state change in
its store, which is read back when it starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from enclave.controls.audit import AuditLog
from enclave.jobspec import JobSpec
from models import registry
from parties.coordinator.store import CoordinatorStore, CoordRecord
from parties.report import validation
from parties.tracking import Tracker
from parties.transport import NodeService
from protocols.constants import STAGE_DONE, JobState
from protocols.errors import ForbiddenError, NotFoundError, SafehouseError, SpecError
from protocols.messages import Fingerprint, JobStatus, Outputs, PartyStatus, Prepared

log = logging.getLogger("safehouse.coordinator")


@dataclass
class CoordJob:
    job_id: str
    spec: JobSpec
    links: dict[str, NodeService]
    state: JobState = JobState.QUEUED
    stage: str = "queued"
    detail: str = ""
    parties: dict[str, PartyStatus] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.time)
    prepared: dict[str, Prepared] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    audit_hashes: list[str] = field(default_factory=list)
    node_entries: dict[str, list[str]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    tracker: Tracker | None = None
    run_id: str = ""


def new_job_id(name: str) -> str:
    return f"{name[:24]}-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"


def security_summary(outputs: Mapping[str, Outputs]) -> dict[str, Any]:
    """How the job was protected, as every party's worker reports it; a fact on which
    parties disagree is shown per party, so a weaker side cannot hide behind another."""
    keys = sorted({k for o in outputs.values() for k in o.security})
    out: dict[str, Any] = {}
    for k in keys:
        seen = {p: o.security.get(k, "") for p, o in outputs.items()}
        values = set(seen.values())
        out[k] = values.pop() if len(values) == 1 else seen
    return out


class _Abort(Exception):
    def __init__(self, state: JobState, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


Links = Callable[[str], NodeService]


def fixed_links(links: Mapping[str, NodeService]) -> Links:
    """Links to a known set of nodes (tests, in-process use)."""

    def link(party: str) -> NodeService:
        if party not in links:
            raise SpecError(f"party {party!r} is not known to this coordinator (known: {sorted(links)})")
        return links[party]

    return link


class Coordinator:
    def __init__(
        self,
        store: CoordinatorStore,
        links: Links,
        tracker: Callable[[], Tracker] | None,
        audit_log: AuditLog | None = None,
        poll_seconds: float = 0.5,
        unreachable_seconds: float = 10.0,
        heartbeat_seconds: float = 2.0,
    ) -> None:
        self.store = store
        # A party's node is reached only as the federation file says, never at an address a spec gives.
        self.links = links
        self.tracker = tracker
        self.audit = audit_log
        self.poll_seconds = poll_seconds
        self.unreachable_seconds = unreachable_seconds
        # Nodes fail a job whose coordinator falls silent; this keeps each prepared node's lease alive.
        self.heartbeat_seconds = heartbeat_seconds
        self.jobs: dict[str, CoordJob] = {}
        self.lock = threading.Lock()
        self._load()

    # -- API -------------------------------------------------------------------
    def submit(self, spec_yaml: str, caller: str = "") -> JobStatus:
        spec = registry.loads_spec(spec_yaml, "submitted job spec")
        self._authorise(caller, spec, "submit")
        links = {p: self.links(p) for p in spec.party_names}
        job = CoordJob(new_job_id(spec.name), spec, links)
        self._audit(job, "job_submitted", {"name": spec.name, "spec_sha256": spec.sha256, "parties": spec.party_names,
                                           "submitted_by": caller or "unauthenticated (insecure dev)"})  # fmt: skip
        with self.lock:
            self.jobs[job.job_id] = job
        self._persist(job)
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.job_id}", daemon=True).start()
        log.info("job %s queued (%s) by %s", job.job_id, spec.name, caller or "an unauthenticated caller")
        return self._status(job)

    def status(self, job_id: str, caller: str = "") -> JobStatus:
        job = self._job(job_id)
        self._authorise(caller, job.spec, "follow")
        return self._status(job)

    def cancel(self, job_id: str, caller: str = "") -> JobStatus:
        job = self._job(job_id)
        self._authorise(caller, job.spec, "cancel")
        job.cancel.set()
        job.done.wait(timeout=30)
        return self._status(job)

    @staticmethod
    def _authorise(caller: str, spec: JobSpec, what: str) -> None:
        """Only a party of a job acts on it; "" is a caller without TLS (--insecure-dev)."""
        if caller and caller not in spec.party_names:
            raise ForbiddenError(f"{caller!r} is not a party of this job and may not {what} it")

    def shutdown(self) -> None:
        with self.lock:
            jobs = [j for j in self.jobs.values() if not j.state.terminal]
        for j in jobs:
            j.cancel.set()
        for j in jobs:
            j.done.wait(timeout=30)

    # -- the job ---------------------------------------------------------------
    def _heartbeat(self, job: CoordJob) -> None:
        while not job.done.wait(self.heartbeat_seconds):
            for name in list(job.prepared):
                # Supervision decides what an unreachable party means; this only renews leases.
                with contextlib.suppress(SafehouseError):
                    job.links[name].status(job.job_id)

    def _run(self, job: CoordJob) -> None:
        threading.Thread(target=self._heartbeat, args=(job,), name=f"heartbeat-{job.job_id}", daemon=True).start()
        try:
            self._prepare(job)
            t0 = time.perf_counter()
            self._start(job)
            self._supervise(job)
            # Every party finished: conclude first, so outputs leave only after SUCCEEDED.
            for name in job.spec.party_names:
                job.parties[name] = job.links[name].conclude(job.job_id, JobState.SUCCEEDED, "all parties finished")
        except _Abort as a:
            self._abort(job, a.state, a.reason)
            self._finish(job)
            return
        except Exception as e:
            log.exception("job %s failed in the coordinator", job.job_id)
            reason = e.public if isinstance(e, SafehouseError) else f"coordinator error ({type(e).__name__})"
            self._abort(job, JobState.FAILED, reason)
            self._finish(job)
            return
        try:
            outputs = self._collect(job, time.perf_counter() - t0)
            self._register(job, outputs, time.perf_counter() - t0)
            self._set(job, JobState.SUCCEEDED, STAGE_DONE, "all parties finished")
        except Exception as e:
            # The parties succeeded and hold their results; only the summary is incomplete.
            log.exception("job %s: collecting outputs failed", job.job_id)
            why = e.public if isinstance(e, SafehouseError) else type(e).__name__
            self._set(job, JobState.SUCCEEDED, STAGE_DONE, f"all parties finished; outputs incomplete: {why}")
        finally:
            self._finish(job)

    def _prepare(self, job: CoordJob) -> None:
        self._set(job, JobState.QUEUED, "prepare", "asking every party to check the job")
        spec_yaml = job.spec.to_yaml()
        for name in job.spec.party_names:
            try:
                job.prepared[name] = job.links[name].prepare(job.job_id, spec_yaml)
            except SafehouseError as e:
                raise _Abort(JobState.FAILED, f"party {name!r} refused the job: {e.public}") from None
        fps = {n: p.fingerprint for n, p in job.prepared.items()}
        job.result["fingerprints"] = {n: f.__dict__ for n, f in fps.items()}
        self._audit(
            job,
            "parties_prepared",
            {"fingerprints": {n: f.sha256 for n, f in fps.items()}},
            {n: [p.audit_hash] for n, p in job.prepared.items()},
        )

    def _start(self, job: CoordJob) -> None:
        cluster = [job.prepared[n].endpoint for n in job.spec.party_names]
        for name in job.spec.party_names:
            try:
                job.parties[name] = job.links[name].start(job.job_id, cluster)
            except SafehouseError as e:
                raise _Abort(JobState.FAILED, f"party {name!r} could not start: {e.public}") from None
        self._open_run(job)
        self._set(job, JobState.RUNNING, "running", "workers started")

    def _open_run(self, job: CoordJob) -> None:
        """Open the MLflow run once workers are starting, so its set-up overlaps theirs."""
        if self.tracker is None or job.run_id:
            return
        job.tracker = self.tracker()
        job.run_id = job.tracker.start(job.job_id, job.spec)
        job.result["mlflow"] = {"tracking_uri": job.tracker.uri, "run_id": job.run_id}
        if job.prepared:
            job.tracker.log_fingerprints(job.run_id, {n: p.fingerprint for n, p in job.prepared.items()})

    def _supervise(self, job: CoordJob) -> None:
        """Poll nodes until all finished; raise _Abort on failure or cancel."""
        names = job.spec.party_names
        last_seen = {n: time.monotonic() for n in names}
        deadline = time.monotonic() + job.spec.deadline_minutes * 60
        while True:
            if job.cancel.is_set():
                raise _Abort(JobState.CANCELLED, "cancelled by request")
            if time.monotonic() > deadline:
                raise _Abort(JobState.FAILED, f"deadline of {job.spec.deadline_minutes} minutes passed")
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
            if all(s.state is JobState.RUNNING and s.stage == STAGE_DONE for s in statuses):
                return
            lead = max(statuses, key=lambda s: s.updated_at)
            self._set(job, JobState.RUNNING, lead.stage, f"[{lead.party}] {lead.detail}", quiet=True)
            job.cancel.wait(self.poll_seconds)

    def _collect(self, job: CoordJob, seconds: float) -> dict[str, Outputs]:
        """Fetch what every node releases, keep only declared outputs, and build the summary."""
        outputs = {n: self._declared_only(job, n, job.links[n].outputs(job.job_id)) for n in job.spec.party_names}
        self._audit(
            job,
            "outputs_received",
            {"artifacts": {n: {a.name: a.sha256 for a in o.artifacts} for n, o in outputs.items()}},
            {n: [o.audit_hash] for n, o in outputs.items()},
        )
        label = outputs[job.spec.label_party]
        job.result.update(registry.get(job.spec.job_type).summary(job.spec, outputs))
        job.result.update({
            "job": job.spec.job_type,
            "psi": {"intersection": int(label.metrics.get("psi_intersection", 0)),
                    "seconds": max(o.stage_seconds.get("psi", 0.0) for o in outputs.values())},
            "seconds": round(seconds, 3),
            "stage_seconds": {p: o.stage_seconds for p, o in outputs.items()},
            "peak_rss_mb": {p: o.metrics.get("peak_rss_mb", 0.0) for p, o in outputs.items()},
            "security": security_summary(outputs),
        })  # fmt: skip
        return outputs

    def _declared_only(self, job: CoordJob, party: str, out: Outputs) -> Outputs:
        """A node sends only what its job type declares; anything else (a name like
        ``../x``, a per-firm table) is refused here too and never written anywhere."""
        declared = {d.name for d in registry.get(job.spec.job_type).outputs if not d.per_firm}
        refused = [a.name for a in out.artifacts if a.name not in declared]
        if not refused:
            return out
        log.warning("job %s: %s sent undeclared outputs %s; refused", job.job_id, party, refused)
        self._audit(job, "output_refused", {"party": party, "names": refused})
        return replace(out, artifacts=tuple(a for a in out.artifacts if a.name in declared))

    def _register(self, job: CoordJob, outputs: Mapping[str, Outputs], seconds: float) -> None:
        if job.tracker is None:
            return
        tracker, run_id = job.tracker, job.run_id
        tracker.log_outputs(run_id, outputs)
        tracker.log_metrics(run_id, {"seconds.total": seconds})
        fps = {n: p.fingerprint for n, p in job.prepared.items()}
        manifests = registry.get(job.spec.job_type).manifests(job.spec, job.job_id, outputs, fps)
        registered = {
            kind: {"name": f"{job.spec.name}-{kind}", "version": tracker.register(run_id, f"{job.spec.name}-{kind}", m)}
            for kind, m in manifests.items()
        }
        job.result["mlflow"]["models"] = registered
        if registered:
            self._audit(job, "model_registered", {"mlflow_run_id": run_id, "models": registered})
        self._reports(job, outputs, fps, registered)
        for name, version in registry.get(job.spec.job_type).model_versions(job.spec):
            tracker.link(run_id, name, version)
        if job.result.get("warnings"):
            tracker.client.set_tag(run_id, "safehouse.warnings", " | ".join(job.result["warnings"]))

    def _reports(self, job: CoordJob, outputs: Mapping[str, Outputs], fps: Mapping[str, Fingerprint],
                 registered: Mapping[str, Mapping[str, str]]) -> None:  # fmt: skip
        """One validation page per registered model version, in the job's MLflow run."""
        if job.tracker is None:
            return
        audit = {**{p: list(h) for p, h in job.node_entries.items()}, "coordinator": list(job.audit_hashes)}
        for kind, reg in registered.items():
            try:
                page = validation.render(validation.ReportInput(
                    job.spec, job.job_id, kind, registry.get(job.spec.job_type).model_title(kind),
                    f"{reg['name']}:{reg['version']}", outputs, fps, job.result.get("models", {}), audit,
                ))  # fmt: skip
            except Exception as e:  # a report is a reading aid: its failure must not lose the outputs
                log.exception("job %s: the validation report of %s failed", job.job_id, kind)
                job.result.setdefault("warnings", []).append(f"validation report of {kind} failed: {type(e).__name__}")
                continue
            job.tracker.client.log_text(job.run_id, page, f"report/{kind}.html")

    def _abort(self, job: CoordJob, state: JobState, reason: str) -> None:
        log.warning("job %s ending %s: %s", job.job_id, state.value, reason)
        for name in job.prepared:
            try:
                job.parties[name] = job.links[name].conclude(job.job_id, state, reason)
            except SafehouseError as e:
                log.warning("job %s: could not conclude at %s: %s", job.job_id, name, e)
        self._set(job, state, job.stage, reason)

    def _finish(self, job: CoordJob) -> None:
        """Audit the end, and close the MLflow run (a job that never started still gets one)."""
        try:
            self._open_run(job)
        except Exception:
            log.exception("job %s: could not open its MLflow run", job.job_id)
        ended = {n: [s.audit_hash] for n, s in job.parties.items() if s.state.terminal and s.audit_hash}
        self._audit(job, "job_end", {"state": job.state.value, "reason": job.detail, "mlflow_run_id": job.run_id},
                    ended)  # fmt: skip
        if job.tracker is not None and job.run_id:
            try:
                # Experiment log and audit trail name each other both ways.
                for party, hashes in job.node_entries.items():
                    job.tracker.client.set_tag(job.run_id, f"safehouse.audit.{party}", ",".join(hashes))
                job.tracker.client.set_tag(job.run_id, "safehouse.audit.coordinator", ",".join(job.audit_hashes))
                job.tracker.finish(job.run_id, job.state.value)
            except Exception:
                log.exception("job %s: could not close its MLflow run", job.job_id)
        self._persist(job)
        job.done.set()

    # -- bookkeeping -----------------------------------------------------------
    def _load(self) -> None:
        """Read the store back: finished jobs answer again; unfinished ones end failed."""
        for rec in self.store.load_all():
            spec = registry.loads_spec(rec.spec_yaml, f"job {rec.job_id} spec")
            job = CoordJob(rec.job_id, spec, {}, rec.state, rec.stage, rec.detail, result=dict(rec.result),
                           submitted_at=rec.submitted_at)  # fmt: skip
            job.done.set()
            self.jobs[rec.job_id] = job
            if not rec.state.terminal:
                self._set(job, JobState.FAILED, rec.stage, "coordinator restarted while the job ran")
                self._audit(job, "job_end", {"state": "failed", "reason": job.detail})
                threading.Thread(target=self._conclude_everywhere, args=(job,), daemon=True).start()

    def _conclude_everywhere(self, job: CoordJob, attempts: int = 10) -> None:
        """After a restart, tell every party of an interrupted job that it failed (each node's
        lease would end it anyway; this ends it sooner and on the record)."""
        left = list(job.spec.party_names)
        for _ in range(attempts):
            for name in list(left):
                try:
                    job.parties[name] = self.links(name).conclude(job.job_id, JobState.FAILED, job.detail)
                    left.remove(name)
                except SpecError:
                    left.remove(name)  # no longer in the federation
                except SafehouseError as e:
                    log.info("job %s: could not yet conclude at %s: %s", job.job_id, name, e.public)
            if not left:
                break
            time.sleep(2.0)
        self._persist(job)

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
        parties = {n: {"state": s.state.value, "detail": s.detail} for n, s in job.parties.items()}
        self.store.save(CoordRecord(job.job_id, job.spec.to_yaml(), job.state, job.stage, job.detail, parties,
                                    job.result, job.submitted_at))  # fmt: skip
