"""Run the coordinator until SIGTERM/SIGINT; end running jobs on the way out."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from enclave import audit
from enclave.config import Home
from enclave.procs import write_atomic
from enclave.tracking import Tracker
from parties.coordinator.jobs import Coordinator
from parties.coordinator.links import GrpcNodeLink
from parties.coordinator.service import CoordinatorServicer
from parties.rpc import serve
from protocols import control_pb2_grpc as pb_grpc

log = logging.getLogger("safehouse.coordinator")


def run(home: Home, nodes: dict[str, str], host: str, port: int, port_file: Path | None) -> int:
    links = {party: GrpcNodeLink(party, addr) for party, addr in nodes.items()}
    coordinator = Coordinator(home.coordinator, links, lambda: Tracker.for_home(home), audit.coordinator_log(home))
    server, bound = serve(
        lambda s: pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(coordinator), s), host, port
    )
    log.info("coordinator listening on %s:%d, nodes %s, tracking %s", host, bound, nodes, home.tracking_uri)
    if port_file is not None:
        write_atomic(port_file, str(bound))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("coordinator stopping")
    coordinator.shutdown()
    server.stop(grace=1).wait()
    return 0
