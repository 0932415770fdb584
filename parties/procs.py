"""Process and port helpers shared by nodes, the local launcher and tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar


def free_ports(n: int, host: str = "127.0.0.1", within: tuple[int, int] | None = None) -> list[int]:
    """Ports free now (all held until every one is chosen): any the OS picks, or
    ones inside ``within`` when a party's federation entry fixes a range."""
    hold = PortHold.take(n, host, within)
    hold.release()
    return list(hold.ports)


class PortHold:
    """Ports bound (not listening) with SO_REUSEPORT and kept until released.

    While held, neither another ``bind`` nor the kernel's choice of a port for
    an outgoing connection or an OS-chosen bind can take them, yet a process of
    the same user that also sets SO_REUSEPORT (a worker's link sidecar) can
    bind and listen on them. That closes the gap between a node choosing a
    job's ports and its worker listening on them, when several jobs start on
    one host.
    """

    _held: ClassVar[set[tuple[str, int]]] = set()  # this process's holds: SO_REUSEPORT would let them share
    _lock = threading.Lock()

    def __init__(self, host: str, socks: list[socket.socket]) -> None:
        self._host = host
        self._socks = socks
        self.ports = tuple(s.getsockname()[1] for s in socks)

    @staticmethod
    def take(n: int, host: str = "127.0.0.1", within: tuple[int, int] | None = None) -> PortHold:
        candidates = [0] * n
        if within is not None:
            candidates = list(range(within[0], within[1] + 1))
            random.shuffle(candidates)
        socks: list[socket.socket] = []
        with PortHold._lock:
            for port in candidates:
                s = _hold_one(host, port) if (host, port) not in PortHold._held else None
                if s is None:
                    continue
                socks.append(s)
                if len(socks) == n:
                    hold = PortHold(host, socks)
                    PortHold._held.update((host, p) for p in hold.ports)
                    return hold
        for s in socks:
            s.close()
        raise OSError(f"no {n} free ports on {host} in {within}")

    def release(self) -> None:
        with PortHold._lock:
            for s in self._socks:
                s.close()
            PortHold._held.difference_update((self._host, p) for p in self.ports)
            self._socks = []


def _hold_one(host: str, port: int) -> socket.socket | None:
    if port:
        # A named port is first bound plainly, which fails if anyone (another
        # node's hold included) has it; an OS-chosen one never shares.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return None
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
    except OSError:
        s.close()
        return None
    return s


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
