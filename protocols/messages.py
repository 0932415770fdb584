"""Typed control-plane messages used inside Safehouse (protobuf stays at the edge)."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.constants import JobState


@dataclass(frozen=True)
class Fingerprint:
    dataset: str
    sha256: str
    schema_sha256: str
    rows: int
    columns: int


@dataclass(frozen=True)
class Endpoint:
    party: str
    host: str
    link_port: int
    spu_port: int


@dataclass(frozen=True)
class Prepared:
    endpoint: Endpoint
    fingerprint: Fingerprint
    audit_hash: str = ""


@dataclass(frozen=True)
class PartyStatus:
    party: str
    job_id: str
    state: JobState
    stage: str = ""
    detail: str = ""
    worker_pid: int = 0
    updated_at: float = 0.0
    audit_hash: str = ""


@dataclass(frozen=True)
class Artifact:
    name: str
    media_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True)
class Outputs:
    party: str
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    model_parts: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    audit_hash: str = ""
    security: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    stage: str = ""
    detail: str = ""
    parties: tuple[PartyStatus, ...] = ()
    result_json: str = ""


@dataclass(frozen=True)
class ContributionRequest:
    model: str
    version: str
    job_id: str
    kind: str
    part_sha256: str
    uscc: str


@dataclass(frozen=True)
class Contribution:
    held: bool
    decisions: bytes = b""
    partial: float = 0.0
    categories: dict[str, float] = field(default_factory=dict)
    withheld: bool = False  # authorisation-required columns were treated as missing
