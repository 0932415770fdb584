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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.files import write_atomic
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


def launch(job_dir: Path, config: dict[str, Any]) -> Worker:
    write_atomic(job_dir / C.WORKER_CONFIG, json.dumps(config, indent=1))
    # os.pipe() fds are not inherited, so no other child holds the write end open.
    read_end, write_end = os.pipe()
    try:
        with (job_dir / C.WORKER_LOG).open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "parties.worker", str(job_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=read_end,
                cwd=job_dir,
                start_new_session=True,
            )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return Worker(proc, write_end)


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
