"""In-process links, for unit tests of node and coordinator job logic without sockets.

Each call goes through the same serde round trip as the gRPC link, and an
error reaches the caller as the wire would carry it: the same class with only
its public text, never the detail that stays in the callee's log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from parties.transport import CoordinatorService, NodeService
from protocols import serde
from protocols.constants import JobState
from protocols.errors import SafehouseError
from protocols.messages import Endpoint, JobStatus, Outputs, PartyStatus, Prepared

T = TypeVar("T")


def _across(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except SafehouseError as e:
        raise type(e)(e.public) from None


class InProcNodeLink:
    """A ``NodeService`` in this process, reached as if over the wire."""

    def __init__(self, service: NodeService) -> None:
        self.service = service

    def prepare(self, job_id: str, spec_yaml: str) -> Prepared:
        return serde.prepared_from_pb(serde.prepared_to_pb(_across(lambda: self.service.prepare(job_id, spec_yaml))))

    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus:
        sent = [serde.endpoint_from_pb(serde.endpoint_to_pb(e)) for e in cluster]
        return _status(_across(lambda: self.service.start(job_id, sent)))

    def status(self, job_id: str) -> PartyStatus:
        return _status(_across(lambda: self.service.status(job_id)))

    def outputs(self, job_id: str) -> Outputs:
        return serde.outputs_from_pb(serde.outputs_to_pb(_across(lambda: self.service.outputs(job_id))))

    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus:
        return _status(_across(lambda: self.service.conclude(job_id, state, reason)))


class InProcCoordinatorLink:
    """A ``CoordinatorService`` in this process, reached as if over the wire by ``identity``."""

    def __init__(self, service: CoordinatorService, identity: str) -> None:
        self.service = service
        self.identity = identity

    def submit(self, spec_yaml: str, caller: str = "") -> JobStatus:
        return _job(_across(lambda: self.service.submit(spec_yaml, self.identity)))

    def status(self, job_id: str, caller: str = "") -> JobStatus:
        return _job(_across(lambda: self.service.status(job_id, self.identity)))

    def cancel(self, job_id: str, caller: str = "") -> JobStatus:
        return _job(_across(lambda: self.service.cancel(job_id, self.identity)))


def _status(s: PartyStatus) -> PartyStatus:
    return serde.party_status_from_pb(serde.party_status_to_pb(s))


def _job(s: JobStatus) -> JobStatus:
    return serde.job_status_from_pb(serde.job_status_to_pb(s))
