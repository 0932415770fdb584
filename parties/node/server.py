"""Run a party node until SIGTERM/SIGINT; stop every worker on the way out."""

from __future__ import annotations

from pathlib import Path

from parties.node import workers
from parties.node.config import NodeConfig
from parties.node.jobs import JobManager
from parties.transport import control_pb2_grpc as pb_grpc
from parties.transport.rpc import run_until_signalled
from parties.transport.servicers import NodeServicer


def run(config: NodeConfig, host: str, port: int, port_file: Path | None) -> int:
    pool = workers.WorkerPool(config.party_home.root)
    pool.warm()
    jobs = JobManager(config, launch=pool.launch, after_worker=pool.warm)
    jobs.start_watchdog()

    def is_coordinator(identity: str) -> bool:
        # Without TLS (--insecure-dev) nobody is authenticated and nothing can be checked.
        return not config.secure or identity == config.federation().coordinator.identity

    def stop() -> None:
        jobs.shutdown()
        pool.close()

    mode = "mutual TLS" if config.secure else "PLAINTEXT (--insecure-dev)"
    return run_until_signalled(
        f"node {config.party} (home {config.home.root}, {mode})",
        lambda s: pb_grpc.add_NodeServicer_to_server(NodeServicer(jobs, is_coordinator), s),
        host, port, port_file, stop, config.tls,
    )  # fmt: skip
