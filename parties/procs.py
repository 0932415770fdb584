"""Process and port helpers shared by nodes, the local launcher and tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_ports(n: int, host: str = "127.0.0.1", within: tuple[int, int] | None = None) -> list[int]:
    """Ports free now (all held until every one is chosen): any the OS picks, or
    ones inside ``within`` when a party's federation entry fixes a range."""
    candidates = [0] * n
    if within is not None:
        candidates = list(range(within[0], within[1] + 1))
        random.shuffle(candidates)
    socks: list[socket.socket] = []
    try:
        for port in candidates:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            if len(socks) == n:
                return [x.getsockname()[1] for x in socks]
        raise OSError(f"no {n} free ports on {host} in {within}")
    finally:
        for s in socks:
            s.close()


def kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM a process's whole group, then SIGKILL what is left; reap it."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Children of a dead leader may linger in the group: always sweep it.
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_for_file(path: Path, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> str:
    """Wait for a file a child writes (such as its port); fail fast if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            text = path.read_text().strip()
            if text:
                return text
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with code {proc.returncode} before writing {path}")
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear within {timeout:.0f}s")


def works_in(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` runs in ``directory`` or names it on its command line
    (a warm worker takes its job after it started, so only its working directory says which)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cwd == directory or directory in cwd.parents or str(directory).encode() in cmdline


def kill_stale_worker(pid: int, job_dir: Path) -> bool:
    """Kill the process group of ``pid`` if that process is the worker of ``job_dir``
    (a pid can be reused: never kill a process that is not ours)."""
    if not works_in(pid, job_dir):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    return True
