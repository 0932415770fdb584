"""The one module converting between protobuf messages and typed dataclasses."""

from __future__ import annotations

from protocols import control_pb2 as pb
from protocols import messages as m
from protocols.constants import JobState

_STATE_TO_PB: dict[JobState, pb.JobState] = {
    JobState.QUEUED: pb.QUEUED,
    JobState.RUNNING: pb.RUNNING,
    JobState.SUCCEEDED: pb.SUCCEEDED,
    JobState.FAILED: pb.FAILED,
    JobState.CANCELLED: pb.CANCELLED,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}


def state_to_pb(s: JobState) -> pb.JobState:
    return _STATE_TO_PB[s]


def state_from_pb(v: pb.JobState) -> JobState:
    if v not in _STATE_FROM_PB:
        raise ValueError(f"unknown job state {v}")
    return _STATE_FROM_PB[v]


def fingerprint_to_pb(f: m.Fingerprint) -> pb.Fingerprint:
    return pb.Fingerprint(
        dataset=f.dataset, sha256=f.sha256, schema_sha256=f.schema_sha256, rows=f.rows, columns=f.columns
    )


def fingerprint_from_pb(f: pb.Fingerprint) -> m.Fingerprint:
    return m.Fingerprint(f.dataset, f.sha256, f.schema_sha256, int(f.rows), int(f.columns))


def endpoint_to_pb(e: m.Endpoint) -> pb.Endpoint:
    return pb.Endpoint(party=e.party, host=e.host, link_port=e.link_port, spu_port=e.spu_port)


def endpoint_from_pb(e: pb.Endpoint) -> m.Endpoint:
    return m.Endpoint(e.party, e.host, int(e.link_port), int(e.spu_port))


def prepared_to_pb(p: m.Prepared) -> pb.PrepareReply:
    return pb.PrepareReply(
        endpoint=endpoint_to_pb(p.endpoint), fingerprint=fingerprint_to_pb(p.fingerprint), audit_hash=p.audit_hash
    )


def prepared_from_pb(p: pb.PrepareReply) -> m.Prepared:
    return m.Prepared(endpoint_from_pb(p.endpoint), fingerprint_from_pb(p.fingerprint), p.audit_hash)


def party_status_to_pb(s: m.PartyStatus) -> pb.PartyStatus:
    return pb.PartyStatus(
        party=s.party,
        job_id=s.job_id,
        state=state_to_pb(s.state),
        stage=s.stage,
        detail=s.detail,
        worker_pid=s.worker_pid,
        updated_at=s.updated_at,
        audit_hash=s.audit_hash,
    )


def party_status_from_pb(s: pb.PartyStatus) -> m.PartyStatus:
    return m.PartyStatus(
        s.party,
        s.job_id,
        state_from_pb(s.state),
        s.stage,
        s.detail,
        int(s.worker_pid),
        float(s.updated_at),
        s.audit_hash,
    )


def outputs_to_pb(o: m.Outputs) -> pb.Outputs:
    return pb.Outputs(
        party=o.party,
        metrics=o.metrics,
        artifacts=[
            pb.Artifact(name=a.name, media_type=a.media_type, data=a.data, sha256=a.sha256) for a in o.artifacts
        ],
        model_parts=o.model_parts,
        stage_seconds=o.stage_seconds,
        audit_hash=o.audit_hash,
        security=o.security,
    )


def outputs_from_pb(o: pb.Outputs) -> m.Outputs:
    return m.Outputs(
        party=o.party,
        metrics=dict(o.metrics),
        artifacts=tuple(m.Artifact(a.name, a.media_type, bytes(a.data), a.sha256) for a in o.artifacts),
        model_parts=dict(o.model_parts),
        stage_seconds=dict(o.stage_seconds),
        audit_hash=o.audit_hash,
        security=dict(o.security),
    )


def job_status_to_pb(s: m.JobStatus) -> pb.JobStatus:
    return pb.JobStatus(
        job_id=s.job_id,
        state=state_to_pb(s.state),
        stage=s.stage,
        detail=s.detail,
        parties=[party_status_to_pb(p) for p in s.parties],
        result_json=s.result_json,
    )


def job_status_from_pb(s: pb.JobStatus) -> m.JobStatus:
    return m.JobStatus(
        s.job_id,
        state_from_pb(s.state),
        s.stage,
        s.detail,
        tuple(party_status_from_pb(p) for p in s.parties),
        s.result_json,
    )


def contribution_request_to_pb(r: m.ContributionRequest) -> pb.ContributionRequest:
    return pb.ContributionRequest(model=r.model, version=r.version, job_id=r.job_id, kind=r.kind,
                                  part_sha256=r.part_sha256, uscc=r.uscc)  # fmt: skip


def contribution_request_from_pb(r: pb.ContributionRequest) -> m.ContributionRequest:
    return m.ContributionRequest(r.model, r.version, r.job_id, r.kind, r.part_sha256, r.uscc)


def contribution_to_pb(c: m.Contribution) -> pb.Contribution:
    return pb.Contribution(held=c.held, decisions=c.decisions, partial=c.partial, categories=c.categories,
                           withheld=c.withheld)  # fmt: skip


def contribution_from_pb(c: pb.Contribution) -> m.Contribution:
    return m.Contribution(bool(c.held), bytes(c.decisions), float(c.partial), dict(c.categories), bool(c.withheld))
