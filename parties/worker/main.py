"""Worker process body: set up SecretFlow production mode and run the job program."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from enclave import jobspec
from enclave.errors import SafehouseError
from enclave.procs import write_json
from models import registry
from models.joint_train import Context
from protocols import constants as C
from protocols.messages import Endpoint


class Events:
    """Append-only progress log the node tails for status."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, stage: str, detail: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"t": time.time(), "stage": stage, "detail": detail}) + "\n")


def _quiet_partition_teardown() -> None:
    # secretflow's Partition.__del__ raises harmless AttributeErrors once the
    # cluster is gone at interpreter exit; keep them out of users' logs.
    try:
        from secretflow.data.core import partition as part_mod

        original = part_mod.Partition.__del__

        def quiet_del(self: Any) -> None:
            with contextlib.suppress(Exception):
                original(self)

        part_mod.Partition.__del__ = quiet_del
    except (ImportError, AttributeError):
        pass


def init_secretflow(job_id: str, party: str, cluster: list[Endpoint], spec: jobspec.JobSpec) -> dict[str, Any]:
    import secretflow as sf
    import spu as spulib

    parties = {
        e.party: {"address": f"{e.host}:{e.link_port}", "listen_addr": f"0.0.0.0:{e.link_port}"} for e in cluster
    }
    sf.init(
        address="local",
        cluster_config={"parties": parties, "self_party": party},
        ray_mode=False,
        cross_silo_comm_backend="brpc_link",
        cross_silo_comm_options={
            "exit_on_sending_failure": True,
            "connect_retry_times": 120,
            "connect_retry_interval_ms": 500,
            "recv_timeout_ms": 30 * 60 * 1000,
        },
        job_name=job_id,
        logging_level="warning",
    )
    devices: dict[str, Any] = {}
    devices["spu"] = sf.SPU(
        {
            "nodes": [
                {"party": e.party, "address": f"{e.host}:{e.spu_port}", "listen_addr": f"0.0.0.0:{e.spu_port}"}
                for e in cluster
            ],
            "runtime_config": {"protocol": spulib.spu_pb2.SEMI2K, "field": spulib.spu_pb2.FM128},
        },
        link_desc={"connect_retry_times": 120, "connect_retry_interval_ms": 500, "recv_timeout_ms": 30 * 60 * 1000},
    )
    if spec.sgb is not None:
        evaluators = [{"party": p} for p in spec.party_names if p != spec.label_party]
        devices["heu"] = sf.HEU(
            {
                "sk_keeper": {"party": spec.label_party},
                "evaluators": evaluators,
                "mode": "PHEU",
                "he_parameters": {"schema": spec.sgb.he, "key_pair": {"generate": {"bit_size": spec.sgb.key_bits}}},
            },
            spulib.spu_pb2.FM128,
        )
    return devices


def _shutdown_within(seconds: float) -> None:
    import threading

    import secretflow as sf

    timer = threading.Timer(seconds, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    sf.shutdown()
    timer.cancel()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m parties.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[0])
    cfg = json.loads((job_dir / C.WORKER_CONFIG).read_text())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emit = Events(job_dir / C.WORKER_EVENTS)
    # A SIGTERM from the node (cancel, peer failure) must end us promptly.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    _quiet_partition_teardown()
    try:
        spec = jobspec.loads(cfg["spec_yaml"], "job spec")
        cluster = [Endpoint(**e) for e in cfg["cluster"]]
        program = registry.program(spec.job_type)
        emit(C.STAGE_INIT, "joining the other parties")
        devices = init_secretflow(cfg["job_id"], cfg["party"], cluster, spec)
        ctx = Context(
            job_id=cfg["job_id"],
            party=cfg["party"],
            spec=spec,
            dataset_dir=Path(cfg["dataset_dir"]),
            job_dir=job_dir,
            model_dir=Path(cfg["model_dir"]),
            emit=emit,
        )
        result = program(ctx, devices)
        # ru_maxrss is in KiB on Linux: this worker's peak memory for the job.
        result.setdefault("metrics", {})["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # Flush every pending message to the peers before leaving: a party
        # that exits early strands the others waiting for its last sends.
        _shutdown_within(120.0)
        write_json(job_dir / C.WORKER_RESULT, result)
        emit(C.STAGE_DONE, "finished")
    except BaseException as e:
        traceback.print_exc()
        # Only this party's own error text leaves the worker, and only the
        # public part of it for our own errors; library errors are summarised.
        public = e.public if isinstance(e, SafehouseError) else f"{type(e).__name__} in worker"
        local = f"{type(e).__name__}: {e}"
        write_json(job_dir / C.WORKER_ERROR, {"public": public, "local": local})
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    # SecretFlow's teardown can hang on dead links; results are on disk.
    os._exit(0)
