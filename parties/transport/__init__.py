"""Links between roles: one interface each, a gRPC implementation and an in-process one.

``NodeService`` is what a node offers the coordinator; ``CoordinatorService``
what the coordinator offers clients. The coordinator and clients hold these
interfaces and never know the wire: ``grpc_links`` and ``servicers`` carry
them over gRPC (``rpc`` is the gRPC edge: servers, channels, error mapping),
``inproc`` in the same process for unit tests, through the same serde round
trip and the same error sanitising.
"""

from __future__ import annotations

from typing import Protocol

from protocols.constants import JobState
from protocols.messages import (
    Contribution,
    ContributionRequest,
    Endpoint,
    JobStatus,
    Outputs,
    PartyStatus,
    Prepared,
)


class NodeService(Protocol):
    """What the coordinator needs of a node."""

    def prepare(self, job_id: str, spec_yaml: str) -> Prepared: ...
    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus: ...
    def status(self, job_id: str) -> PartyStatus: ...
    def outputs(self, job_id: str) -> Outputs: ...
    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus: ...


class CoordinatorService(Protocol):
    """What clients (CLI, Python API, notebooks) need of the coordinator.

    ``caller`` is the identity the transport authenticated ("" without TLS):
    the coordinator lets only a party of a job submit, follow or cancel it.
    """

    def submit(self, spec_yaml: str, caller: str = "") -> JobStatus: ...
    def status(self, job_id: str, caller: str = "") -> JobStatus: ...
    def cancel(self, job_id: str, caller: str = "") -> JobStatus: ...


class ScoringService(Protocol):
    """What a label owner's scoring service needs of another party's, for one firm."""

    def contribute(self, request: ContributionRequest, caller: str = "") -> Contribution: ...
