"""Run the coordinator until SIGTERM/SIGINT; end running jobs on the way out."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from enclave.controls import audit
from enclave.home import Home
from parties.coordinator.jobs import Coordinator
from parties.coordinator.store import file_store
from parties.tracking import Tracker
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.grpc_links import GrpcNodeLink
from parties.transport.rpc import run_until_signalled
from parties.transport.servicers import CoordinatorServicer

log = logging.getLogger("safehouse.coordinator")


class SharedTracker:
    """One Tracker for all jobs, built once (creating a sqlite store takes seconds)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._tracker: Tracker | None = None

    def __call__(self) -> Tracker:
        with self._lock:
            if self._tracker is None:
                self._tracker = Tracker.for_home(self.home)
            return self._tracker

    def warm(self) -> None:
        try:
            self()
        except Exception:  # the first job will report it
            log.exception("MLflow tracking is not ready")


def run(home: Home, nodes: dict[str, str], host: str, port: int, port_file: Path | None) -> int:
    links = {party: GrpcNodeLink(party, addr) for party, addr in nodes.items()}
    tracker = SharedTracker(home)
    threading.Thread(target=tracker.warm, name="mlflow-warm", daemon=True).start()
    coordinator = Coordinator(
        file_store(home.coordinator / "jobs"), links, tracker, audit.coordinator_log(home), link_factory=GrpcNodeLink
    )
    return run_until_signalled(
        f"coordinator (nodes {nodes}, tracking {home.tracking_uri})",
        lambda s: pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(coordinator), s),
        host, port, port_file, coordinator.shutdown,
    )  # fmt: skip
