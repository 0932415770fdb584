"""gRPC servicers: protobuf in, typed calls to a node's or the coordinator's service, protobuf out."""

from __future__ import annotations

import grpc

from parties.transport import CoordinatorService, NodeService
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import handler
from protocols import control_pb2 as pb
from protocols import serde


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(self, service: NodeService) -> None:
        self.service = service

    @handler
    def Prepare(self, request: pb.PrepareRequest, context: grpc.ServicerContext) -> pb.PrepareReply:
        return serde.prepared_to_pb(self.service.prepare(request.job_id, request.spec_yaml))

    @handler
    def Start(self, request: pb.StartRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        cluster = [serde.endpoint_from_pb(e) for e in request.cluster]
        return serde.party_status_to_pb(self.service.start(request.job_id, cluster))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.PartyStatus:
        return serde.party_status_to_pb(self.service.status(request.job_id))

    @handler
    def FetchOutputs(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.Outputs:
        return serde.outputs_to_pb(self.service.outputs(request.job_id))

    @handler
    def Conclude(self, request: pb.ConcludeRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        state = serde.state_from_pb(request.state)
        return serde.party_status_to_pb(self.service.conclude(request.job_id, state, request.reason))


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(self, service: CoordinatorService) -> None:
        self.service = service

    @handler
    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.submit(request.spec_yaml))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.status(request.job_id))

    @handler
    def Cancel(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.service.cancel(request.job_id))
