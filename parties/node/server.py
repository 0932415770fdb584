"""Run a party node until SIGTERM/SIGINT; stop every worker on the way out."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from enclave.procs import write_atomic
from parties.node.config import NodeConfig
from parties.node.jobs import JobManager
from parties.node.service import NodeServicer
from parties.rpc import serve
from protocols import control_pb2_grpc as pb_grpc

log = logging.getLogger("safehouse.node")


def run(config: NodeConfig, host: str, port: int, port_file: Path | None) -> int:
    jobs = JobManager(config)
    server, bound = serve(lambda s: pb_grpc.add_NodeServicer_to_server(NodeServicer(jobs), s), host, port)
    log.info("node %s listening on %s:%d (home %s)", config.party, host, bound, config.home.root)
    if port_file is not None:
        write_atomic(port_file, str(bound))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("node %s stopping", config.party)
    jobs.shutdown()
    server.stop(grace=1).wait()
    return 0
