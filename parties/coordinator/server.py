"""Run the coordinator until SIGTERM/SIGINT; end running jobs on the way out."""

from __future__ import annotations

from pathlib import Path

from enclave import audit
from enclave.config import Home
from enclave.tracking import Tracker
from parties.coordinator.jobs import Coordinator
from parties.coordinator.links import GrpcNodeLink
from parties.coordinator.service import CoordinatorServicer
from parties.rpc import run_until_signalled
from protocols import control_pb2_grpc as pb_grpc


def run(home: Home, nodes: dict[str, str], host: str, port: int, port_file: Path | None) -> int:
    links = {party: GrpcNodeLink(party, addr) for party, addr in nodes.items()}
    coordinator = Coordinator(
        home.coordinator, links, lambda: Tracker.for_home(home), audit.coordinator_log(home), link_factory=GrpcNodeLink
    )
    return run_until_signalled(
        f"coordinator (nodes {nodes}, tracking {home.tracking_uri})",
        lambda s: pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(coordinator), s),
        host, port, port_file, coordinator.shutdown,
    )  # fmt: skip
