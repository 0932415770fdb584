"""gRPC servicer of the Coordinator service."""

from __future__ import annotations

import grpc

from parties.coordinator.jobs import Coordinator
from parties.rpc import handler
from protocols import control_pb2 as pb
from protocols import control_pb2_grpc as pb_grpc
from protocols import serde


class CoordinatorServicer(pb_grpc.CoordinatorServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    @handler
    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.coordinator.submit(request.spec_yaml))

    @handler
    def Status(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.coordinator.status(request.job_id))

    @handler
    def Cancel(self, request: pb.JobRef, context: grpc.ServicerContext) -> pb.JobStatus:
        return serde.job_status_to_pb(self.coordinator.cancel(request.job_id))
