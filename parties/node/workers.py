"""A node's worker processes: start one per job, read its progress, tell why it failed.

The worker runs in its own process group with the job directory as its working
directory, so everything SecretFlow and SPU write at run time (logs, caches)
stays inside that job's directory in the party's domain. Its stdin is a
lifeline: the read end of a pipe whose write end only the node holds. When the
node dies, however it dies, the kernel closes that end, and the worker cleans
up its key files and partial model parts and ends itself and its sidecar.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.files import write_atomic
from parties.procs import kill_group
from protocols import constants as C


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    lifeline: int | None = None  # the node's end of the worker's lifeline pipe

    def release(self) -> None:
        if self.lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = None


def _spawn(argv: list[str], log: Path, cwd: Path) -> Worker:
    # os.pipe() fds are not inherited, so no other child holds the write end open.
    read_end, write_end = os.pipe()
    try:
        with log.open("ab") as out:
            cmd = [sys.executable, "-m", "parties.worker", *argv]
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=read_end, cwd=cwd,
                                    start_new_session=True)  # fmt: skip
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return Worker(proc, write_end)


def launch(job_dir: Path, config: dict[str, Any]) -> Worker:
    """A fresh worker for one job (it imports the modelling libraries itself)."""
    write_atomic(job_dir / C.WORKER_CONFIG, json.dumps(config, indent=1))
    return _spawn([str(job_dir)], job_dir / C.WORKER_LOG, job_dir)


class WorkerPool:
    """One warm worker per node: a process that has already imported the modelling
    libraries and waits on its lifeline for a job directory, saving seconds of
    start-up per job. The next standby is warmed once a job's worker has ended,
    never while one runs (it would compete for the same cores); a standby that
    died is replaced by a fresh start."""

    def __init__(self, party_root: Path) -> None:
        self.party_root = party_root
        self._lock = threading.Lock()
        self._standby: Worker | None = None
        self._closed = False

    def warm(self) -> None:
        with self._lock:
            if self._closed or (self._standby is not None and self._standby.proc.poll() is None):
                return
            log = self.party_root / "logs" / "worker-standby.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            self._standby = _spawn(["--standby"], log, self.party_root)

    def launch(self, job_dir: Path, config: dict[str, Any]) -> Worker:
        write_atomic(job_dir / C.WORKER_CONFIG, json.dumps(config, indent=1))
        with self._lock:
            standby, self._standby = self._standby, None
        if standby is not None and standby.proc.poll() is None and standby.lifeline is not None:
            try:
                os.write(standby.lifeline, f"{job_dir}\n".encode())
                return standby
            except OSError:
                standby.release()
        return _spawn([str(job_dir)], job_dir / C.WORKER_LOG, job_dir)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            standby, self._standby = self._standby, None
        if standby is not None:
            kill_group(standby.proc, grace=2.0)
            standby.release()


def progress(job_dir: Path) -> tuple[str, str]:
    """The latest (stage, detail) the worker reported, or empty strings."""
    events = job_dir / C.WORKER_EVENTS
    if not events.is_file():
        return "", ""
    with events.open("rb") as f:
        try:
            f.seek(-4096, 2)
        except OSError:
            f.seek(0)
        lines = f.read().decode("utf-8", "replace").strip().splitlines()
    try:
        ev = json.loads(lines[-1]) if lines else {}
        return str(ev["stage"]), str(ev["detail"])
    except (ValueError, KeyError):
        return "", ""


def failure_reason(job_dir: Path, returncode: int) -> str:
    """The worker's own public reason if it left one, else how it exited."""
    err = job_dir / C.WORKER_ERROR
    if err.is_file():
        try:
            return f"worker failed: {json.loads(err.read_text())['public']}"
        except (ValueError, KeyError):
            pass
    how = f"signal {-returncode}" if returncode < 0 else f"code {returncode}"
    return f"worker exited with {how}"
