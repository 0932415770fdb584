"""gRPC clients: the coordinator's link to a node, and a client's link to the coordinator."""

from __future__ import annotations

from enclave.controls.pki import TlsFiles
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import call, channel
from protocols import control_pb2 as pb
from protocols import serde
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


class GrpcNodeLink:
    """A node's ``NodeService`` over gRPC."""

    def __init__(self, party: str, address: str, tls: TlsFiles | None, identity: str | None = None) -> None:
        self.party, self.address = party, address
        # Only a server whose certificate names this party is that party's node.
        self.stub = pb_grpc.NodeStub(channel(address, tls, identity or party))

    def _what(self) -> str:
        return f"node {self.party!r} at {self.address}"

    def prepare(self, job_id: str, spec_yaml: str) -> Prepared:
        reply = call(self._what(), self.stub.Prepare, pb.PrepareRequest(job_id=job_id, spec_yaml=spec_yaml), 60)
        return serde.prepared_from_pb(reply)

    def start(self, job_id: str, cluster: list[Endpoint]) -> PartyStatus:
        req = pb.StartRequest(job_id=job_id, cluster=[serde.endpoint_to_pb(e) for e in cluster])
        return serde.party_status_from_pb(call(self._what(), self.stub.Start, req))

    def status(self, job_id: str) -> PartyStatus:
        return serde.party_status_from_pb(call(self._what(), self.stub.Status, pb.JobRef(job_id=job_id), 10))

    def outputs(self, job_id: str) -> Outputs:
        return serde.outputs_from_pb(call(self._what(), self.stub.FetchOutputs, pb.JobRef(job_id=job_id), 60))

    def conclude(self, job_id: str, state: JobState, reason: str) -> PartyStatus:
        req = pb.ConcludeRequest(job_id=job_id, state=serde.state_to_pb(state), reason=reason)
        return serde.party_status_from_pb(call(self._what(), self.stub.Conclude, req, 60))


class GrpcCoordinatorLink:
    """The coordinator's ``CoordinatorService`` over gRPC: what the CLI, the API and tests use."""

    def __init__(self, address: str, tls: TlsFiles | None, identity: str = "coordinator") -> None:
        self.address = address
        self.stub = pb_grpc.CoordinatorStub(channel(address, tls, identity))

    def _what(self) -> str:
        return f"coordinator at {self.address}"

    # The caller's identity is the certificate this link presents; the argument is
    # there for the interface (an in-process link has no certificate to show).
    def submit(self, spec_yaml: str, caller: str = "") -> JobStatus:
        reply = call(self._what(), self.stub.Submit, pb.SubmitRequest(spec_yaml=spec_yaml), 60)
        return serde.job_status_from_pb(reply)

    def status(self, job_id: str, caller: str = "") -> JobStatus:
        return serde.job_status_from_pb(call(self._what(), self.stub.Status, pb.JobRef(job_id=job_id), 10))

    def cancel(self, job_id: str, caller: str = "") -> JobStatus:
        return serde.job_status_from_pb(call(self._what(), self.stub.Cancel, pb.JobRef(job_id=job_id), 60))


class GrpcScoringLink:
    """Another party's ``ScoringService`` over gRPC, one persistent channel (online latency)."""

    def __init__(self, party: str, address: str, tls: TlsFiles | None, identity: str | None = None) -> None:
        self.party, self.address = party, address
        self.stub = pb_grpc.ScoringStub(channel(address, tls, identity or party))

    def contribute(self, request: ContributionRequest, caller: str = "") -> Contribution:
        what = f"scoring service of {self.party!r} at {self.address}"
        reply = call(what, self.stub.Contribute, serde.contribution_request_to_pb(request), 5)
        return serde.contribution_from_pb(reply)
