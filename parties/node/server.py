"""Run a party node until SIGTERM/SIGINT; stop every worker on the way out."""

from __future__ import annotations

from pathlib import Path

from parties.node.config import NodeConfig
from parties.node.jobs import JobManager
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import run_until_signalled
from parties.transport.servicers import NodeServicer


def run(config: NodeConfig, host: str, port: int, port_file: Path | None) -> int:
    jobs = JobManager(config)
    return run_until_signalled(
        f"node {config.party} (home {config.home.root})",
        lambda s: pb_grpc.add_NodeServicer_to_server(NodeServicer(jobs), s),
        host, port, port_file, jobs.shutdown,
    )  # fmt: skip
