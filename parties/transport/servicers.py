"""gRPC servicers: protobuf in, typed calls to a node's or the coordinator's service, protobuf out.

Each call is authorised by the identity in the caller's verified certificate:
a node serves the coordinator alone; the coordinator hands the caller's
identity to its service, which lets only a job's parties act on it.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from parties.transport import CoordinatorService, NodeService, ScoringService
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import handler, peer_identity, require
from protocols import control_pb2 as pb
from protocols import serde


class NodeServicer(pb_grpc.NodeServicer):
    """``is_coordinator`` says whether an authenticated identity is the federation's coordinator."""

    def __init__(self, service: NodeService, is_coordinator: Callable[[str], bool]) -> None:
        self.service = service
        self.is_coordinator = is_coordinator

    def _guard(self, context: grpc.ServicerContext, what: str) -> None:
        require(context, self.is_coordinator, f"{what} jobs on this node (only the coordinator may)")

    @handler
    def Prepare(self, request: pb.PrepareRequest, context: grpc.ServicerContext) -> pb.PrepareReply:
        self._guard(context, "prepare")
        return serde.prepared_to_pb(self.service.prepare(request.job_id, request.spec_yaml))

    @handler
    def Start(self, request: pb.StartRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        self._guard(context, "start")
        cluster = [serde.endpoint_from_pb(e) for e in request.cluster]
        return serde.party_status_to_pb(self.service.start(request.job_id, cluster))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.PartyStatus:
        self._guard(context, "follow")
        return serde.party_status_to_pb(self.service.status(request.job_id))

    @handler
    def FetchOutputs(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.Outputs:
        self._guard(context, "fetch the outputs of")
        return serde.outputs_to_pb(self.service.outputs(request.job_id))

    @handler
    def Conclude(self, request: pb.ConcludeRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        self._guard(context, "conclude")
        state = serde.state_from_pb(request.state)
        return serde.party_status_to_pb(self.service.conclude(request.job_id, state, request.reason))


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(self, service: CoordinatorService) -> None:
        self.service = service

    @handler
    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.submit(request.spec_yaml, peer_identity(context)))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.status(request.job_id, peer_identity(context)))

    @handler
    def Cancel(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.cancel(request.job_id, peer_identity(context)))


class ScoringServicer(pb_grpc.ScoringServicer):
    """The caller's certificate identity goes to the service, which answers label owners only."""

    def __init__(self, service: ScoringService) -> None:
        self.service = service

    @handler
    def Contribute(self, request: pb.ContributionRequest, context: grpc.ServicerContext) -> pb.Contribution:
        req = serde.contribution_request_from_pb(request)
        return serde.contribution_to_pb(self.service.contribute(req, peer_identity(context)))
