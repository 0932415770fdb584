"""Run the coordinator until SIGTERM/SIGINT; end running jobs on the way out."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from enclave import federation
from enclave.controls import audit
from enclave.controls.pki import TlsFiles
from enclave.home import Home
from parties.coordinator.jobs import Coordinator, Links
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


def federation_links(federation_file: Path, tls: TlsFiles | None) -> Links:
    """Nodes as the federation file lists them, read afresh per job; one channel per node."""
    cache: dict[tuple[str, str, str], GrpcNodeLink] = {}

    def link(party: str) -> GrpcNodeLink:
        m = federation.load(federation_file).party(party)
        key = (party, m.address, m.identity)
        if key not in cache:
            cache[key] = GrpcNodeLink(party, m.address, tls, m.identity)
        return cache[key]

    return link


def run(home: Home, federation_file: Path, tls: TlsFiles | None, host: str, port: int, port_file: Path | None) -> int:
    tracker = SharedTracker(home)
    threading.Thread(target=tracker.warm, name="mlflow-warm", daemon=True).start()
    links = federation_links(federation_file, tls)
    coordinator = Coordinator(file_store(home.coordinator / "jobs"), links, tracker, audit.coordinator_log(home))
    mode = "mutual TLS" if tls is not None else "PLAINTEXT (--insecure-dev)"
    return run_until_signalled(
        f"coordinator (federation {federation_file}, {mode}, tracking {home.tracking_uri})",
        lambda s: pb_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(coordinator), s),
        host, port, port_file, coordinator.shutdown, tls,
    )  # fmt: skip
