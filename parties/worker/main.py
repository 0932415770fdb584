"""Worker process body: set up SecretFlow production mode and run the job program."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from enclave.controls.pki import TlsFiles
from enclave.files import write_atomic, write_json
from models import registry
from models.jobtype import JobContext
from models.local import TMP_DIR, discard_transient
from parties.worker import devices, hardening, links
from parties.worker.sidecar import SidecarConfig
from protocols import constants as C
from protocols.errors import SafehouseError, UnavailableError
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


def _watch_lifeline(job_dir: Path, model_dir: Path) -> None:
    """The node holds the other end of stdin: when it dies, so does this job, leaving nothing behind."""
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return  # started by hand, with no node to outlive

    def watch() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(1):
                pass
        discard_transient(job_dir, model_dir, keep_model=False)
        links.remove_socket_dir(job_dir)
        os.killpg(0, signal.SIGKILL)  # this worker and its sidecar

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _tls(cfg: dict[str, Any]) -> TlsFiles | None:
    t = cfg.get("tls")
    return None if not t else TlsFiles(Path(t["ca"]), Path(t["cert"]), Path(t["key"]))


def _start_sidecar(job_dir: Path, sidecar: SidecarConfig, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """The sidecar runs beside this worker, in its process group, and dies with it."""
    config = job_dir / "sidecar.json"
    write_atomic(config, sidecar.to_json())
    sidecar.ready.unlink(missing_ok=True)
    with (job_dir / "sidecar.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "parties.worker.sidecar", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not sidecar.ready.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            # The cause stays in this party's own worker log; peers get only the summary.
            tail = (job_dir / "sidecar.log").read_text(errors="replace")[-2000:]
            logging.getLogger("safehouse.worker").error("link sidecar (exit %s) said:\n%s", proc.poll(), tail)
            raise UnavailableError("the link sidecar did not start; see sidecar.log in the job directory")
        time.sleep(0.05)
    return proc


def _run(job_dir: Path, cfg: dict[str, Any], emit: Events) -> None:
    spec = registry.loads_spec(cfg["spec_yaml"], "job spec")
    job_type = registry.get(spec.job_type)
    needs = job_type.devices(spec)
    cluster = [Endpoint(**e) for e in cfg["cluster"]]
    program = registry.program(spec.job_type)
    tls = _tls(cfg)
    plan = links.plan(cfg["party"], cluster, links.spu_parties(cluster, spec.label_party), tls, cfg["identities"],
                      cfg["bind_host"], job_dir)  # fmt: skip
    emit(C.STAGE_INIT, "joining the other parties")
    if plan.sidecar is not None:
        _start_sidecar(job_dir, plan.sidecar)
    hardening.install(job_dir)
    devs = devices.init(cfg["job_id"], cfg["party"], plan, needs)
    ctx = JobContext(cfg["job_id"], cfg["party"], spec, Path(cfg["dataset_dir"]), job_dir, Path(cfg["model_dir"]), emit)
    result = program(ctx, devs)
    # ru_maxrss is in KiB on Linux: this worker's peak memory for the job.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    security = links.security(tls is not None, needs.spu, needs.heu)
    result = replace(result, metrics={**result.metrics, "peak_rss_mb": peak}, security=security)
    # Flush every pending message to the peers before leaving: a party that
    # exits early strands the others waiting for its last sends.
    devices.shutdown_within(120.0)
    write_atomic(job_dir / C.WORKER_RESULT, result.to_json())
    emit(C.STAGE_DONE, "finished")


def _private_tmp(job_dir: Path) -> None:
    """Every temporary file of this job goes to its own directory, which the node removes:
    SPU's PSI writes sorted key lists to $TMPDIR and deletes them only on a clean exit."""
    tmp = job_dir / TMP_DIR
    tmp.mkdir(mode=0o700, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)


def _await_job() -> Path:
    """A standby worker: import what every job needs now, then wait on the lifeline for a job."""
    import secretflow  # noqa: F401  # the slow imports, done before any job is waiting

    from models import registry

    for name in registry.names():
        registry.program(name)
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)  # one byte at a time: what follows on the lifeline is not ours to take
        if not byte:
            os._exit(0)  # the node went away before giving a job
        line += byte
    job_dir = Path(line.decode().strip())
    os.chdir(job_dir)  # SecretFlow and SPU write their run-time files in the working directory
    log = os.open(job_dir / C.WORKER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return job_dir


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m parties.worker JOB_DIR | --standby", file=sys.stderr)
        return 2
    job_dir = _await_job() if argv[0] == "--standby" else Path(argv[0])
    _private_tmp(job_dir)
    cfg = json.loads((job_dir / C.WORKER_CONFIG).read_text())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emit = Events(job_dir / C.WORKER_EVENTS)
    # A SIGTERM from the node (cancel, peer failure) must end us promptly.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    _watch_lifeline(job_dir, Path(cfg["model_dir"]))
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
