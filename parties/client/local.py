"""Start a whole Safehouse locally: one node process per party and a coordinator.

The commands are exactly those in ``docker/compose.yaml`` (``safehouse node``,
``safehouse coordinator``), on ports the OS picks. Every process runs in its
own process group; leaving the context stops them all and reaps them, and a
node stops its workers before it exits.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from enclave.home import Home
from parties.procs import kill_group, wait_for_file
from protocols.errors import UnavailableError


def safehouse_command() -> list[str]:
    """The installed ``safehouse`` entry point beside this interpreter."""
    exe = Path(sys.executable).parent / "safehouse"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("safehouse")
    return [found] if found else [sys.executable, "-m", "parties.cli"]


def node_args(party: str, home: str, host: str, port: int, port_file: str, advertise_host: str) -> list[str]:
    """``safehouse`` arguments of a party node (also docker/compose.yaml's)."""
    return ["node", "--party", party, "--home", home, "--host", host, "--port", str(port),
            "--port-file", port_file, "--advertise-host", advertise_host]  # fmt: skip


def coordinator_args(nodes: dict[str, str], home: str, host: str, port: int, port_file: str) -> list[str]:
    """``safehouse`` arguments of the coordinator (also docker/compose.yaml's)."""
    node_flags = [x for party, addr in nodes.items() for x in ("--node", f"{party}={addr}")]
    return ["coordinator", *node_flags, "--home", home, "--host", host, "--port", str(port), "--port-file", port_file]


@dataclass
class LocalCluster:
    home: Home
    parties: list[str]
    host: str = "127.0.0.1"
    start_timeout: float = 60.0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    node_addresses: dict[str, str] = field(default_factory=dict)
    address: str = ""

    @property
    def log_dir(self) -> Path:
        return self.home.log_dir

    def _port_file(self, role: str) -> Path:
        run_dir = self.home.root / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        port_file = run_dir / f"{role}.port"
        port_file.unlink(missing_ok=True)
        return port_file

    def _spawn(self, role: str, args: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{role}.log").open("ab") as log:
            self.procs[role] = subprocess.Popen(
                [*safehouse_command(), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _address(self, role: str, port_file: Path) -> str:
        try:
            port = wait_for_file(port_file, self.start_timeout, self.procs[role])
        except (RuntimeError, TimeoutError) as e:
            raise UnavailableError(f"{role} did not start: {e}; see {self.log_dir / (role + '.log')}") from None
        return f"{self.host}:{port}"

    def start(self) -> LocalCluster:
        try:
            home = str(self.home.root)
            # Nodes start side by side; the coordinator needs their addresses.
            port_files = {p: self._port_file(f"node-{p}") for p in self.parties}
            for p, pf in port_files.items():
                self._spawn(f"node-{p}", node_args(p, home, self.host, 0, str(pf), self.host))
            for p, pf in port_files.items():
                self.node_addresses[p] = self._address(f"node-{p}", pf)
            pf = self._port_file("coordinator")
            self._spawn("coordinator", coordinator_args(self.node_addresses, home, self.host, 0, str(pf)))
            self.address = self._address("coordinator", pf)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Coordinator first (it concludes running jobs), then the nodes.
        for role in sorted(self.procs, key=lambda r: r != "coordinator"):
            kill_group(self.procs[role], grace=20.0)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
