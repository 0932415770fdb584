"""gRPC servicer of the Node service: protobuf in, typed calls to JobManager."""

from __future__ import annotations

import grpc

from parties.node.jobs import JobManager
from parties.rpc import handler
from protocols import control_pb2 as pb
from protocols import control_pb2_grpc as pb_grpc
from protocols import serde


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    @handler
    def Prepare(self, request: pb.PrepareRequest, context: grpc.ServicerContext) -> pb.PrepareReply:
        return serde.prepared_to_pb(self.jobs.prepare(request.job_id, request.spec_yaml))

    @handler
    def Start(self, request: pb.StartRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        cluster = [serde.endpoint_from_pb(e) for e in request.cluster]
        return serde.party_status_to_pb(self.jobs.start(request.job_id, cluster))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.PartyStatus:
        return serde.party_status_to_pb(self.jobs.status(request.job_id))

    @handler
    def FetchOutputs(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.Outputs:
        return serde.outputs_to_pb(self.jobs.outputs(request.job_id))

    @handler
    def Conclude(self, request: pb.ConcludeRequest, context: grpc.ServicerContext) -> pb.PartyStatus:
        state = serde.state_from_pb(request.state)
        return serde.party_status_to_pb(self.jobs.conclude(request.job_id, state, request.reason))
