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
from dataclasses import replace
from pathlib import Path
from typing import Any

from enclave.files import write_atomic, write_json
from models import registry
from models.jobtype import JobContext
from parties.worker import devices
from protocols import constants as C
from protocols.errors import SafehouseError
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


def _run(job_dir: Path, cfg: dict[str, Any], emit: Events) -> None:
    spec = registry.loads_spec(cfg["spec_yaml"], "job spec")
    job_type = registry.get(spec.job_type)
    cluster = [Endpoint(**e) for e in cfg["cluster"]]
    program = registry.program(spec.job_type)
    emit(C.STAGE_INIT, "joining the other parties")
    devs = devices.init(cfg["job_id"], cfg["party"], cluster, spec, job_type.devices(spec))
    ctx = JobContext(cfg["job_id"], cfg["party"], spec, Path(cfg["dataset_dir"]), job_dir, Path(cfg["model_dir"]), emit)
    result = program(ctx, devs)
    # ru_maxrss is in KiB on Linux: this worker's peak memory for the job.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = replace(result, metrics={**result.metrics, "peak_rss_mb": peak})
    # Flush every pending message to the peers before leaving: a party that
    # exits early strands the others waiting for its last sends.
    devices.shutdown_within(120.0)
    write_atomic(job_dir / C.WORKER_RESULT, result.to_json())
    emit(C.STAGE_DONE, "finished")


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
        _run(job_dir, cfg, emit)
    except BaseException as e:
        traceback.print_exc()
        # Only this party's own error text leaves the worker, and only the
        # public part of it for our own errors; library errors are summarised.
        public = e.public if isinstance(e, SafehouseError) else f"{type(e).__name__} in worker"
        write_json(job_dir / C.WORKER_ERROR, {"public": public, "local": f"{type(e).__name__}: {e}"})
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    # SecretFlow's teardown can hang on dead links; results are on disk.
    os._exit(0)
