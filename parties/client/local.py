"""Start a whole Safehouse locally: one node process per party and a coordinator.

The commands are exactly those in ``docker/compose.yaml`` (``safehouse node``,
``safehouse coordinator``), on ports the OS picks. Before they start, the
home's federation PKI is made (a CA, a certificate per party and for the
coordinator) unless it exists; once they listen, the federation file naming
every address is written, which nodes and the coordinator read per job.
``serve`` starts parties' scoring services (``safehouse serve``) the same way. Every
process runs in its own process group; leaving the context stops them all and
reaps them, and a node stops its workers before it exits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from enclave import federation
from enclave.controls import pki
from enclave.controls.pki import TlsFiles
from enclave.federation import Federation, Member
from enclave.home import Home
from parties.procs import kill_group, wait_for_file
from parties.serving.client import SERVE_FILE
from protocols.errors import SafehouseError, UnavailableError


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


def coordinator_args(home: str, host: str, port: int, port_file: str) -> list[str]:
    """``safehouse`` arguments of the coordinator (also docker/compose.yaml's)."""
    return ["coordinator", "--home", home, "--host", host, "--port", str(port), "--port-file", port_file]


def ensure_pki(home: Home, identities: list[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
    """A federation CA and a certificate for each identity, made once per local home."""
    if not (home.pki_dir / pki.CA_CERT).is_file():
        pki.init_ca(home.pki_dir)
    for name in identities:
        if not TlsFiles.in_dir(home.tls_dir(name)).cert.is_file():
            pki.issue(home.pki_dir, name, home.tls_dir(name), hosts)


@dataclass
class LocalCluster:
    home: Home
    parties: list[str]
    host: str = "127.0.0.1"
    start_timeout: float = 60.0
    insecure_dev: bool = False
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    node_addresses: dict[str, str] = field(default_factory=dict)
    address: str = ""
    args: dict[str, list[str]] = field(default_factory=dict)
    scoring: dict[str, str] = field(default_factory=dict)  # party -> its scoring service (gRPC), once serving

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
        flags = ["--insecure-dev"] if self.insecure_dev else []
        self.args[role] = args
        with (self.log_dir / f"{role}.log").open("ab") as log:
            self.procs[role] = subprocess.Popen(
                [*safehouse_command(), *args, *flags],
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

    def federation(self) -> Federation:
        # Scoring services outlive a job's cluster (``safehouse serve`` runs on its own): keep
        # the addresses they published unless this cluster started its own.
        published = self._published_scoring()
        members = {
            p: Member(p, addr, p, self.host, scoring=self.scoring.get(p, published.get(p)))
            for p, addr in self.node_addresses.items()
        }
        return Federation(federation.LOCAL, Member("coordinator", self.address, "coordinator"), members)

    def _published_scoring(self) -> dict[str, str]:
        try:
            fed = federation.load(self.home.root / federation.FILE)
        except SafehouseError:
            return {}  # no federation file yet, or an unreadable one this cluster replaces
        return {p: m.scoring for p, m in fed.parties.items() if m.scoring is not None}

    def start(self) -> LocalCluster:
        try:
            if not self.insecure_dev:
                ensure_pki(self.home, [*self.parties, pki.COORDINATOR])
            home = str(self.home.root)
            # Nodes start side by side; the coordinator and the federation file need their addresses.
            port_files = {p: self._port_file(f"node-{p}") for p in self.parties}
            for p, pf in port_files.items():
                self._spawn(f"node-{p}", node_args(p, home, self.host, 0, str(pf), self.host))
            for p, pf in port_files.items():
                self.node_addresses[p] = self._address(f"node-{p}", pf)
            pf = self._port_file("coordinator")
            self._spawn("coordinator", coordinator_args(home, self.host, 0, str(pf)))
            self.address = self._address("coordinator", pf)
            self.federation().write(self.home.root / federation.FILE)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, role: str) -> None:
        """SIGKILL one role's process, as a crash would: no clean-up of its own runs."""
        proc = self.procs[role]
        proc.kill()
        proc.wait(timeout=30)

    def restart(self, role: str) -> None:
        """Start a role again with its arguments (a new OS-chosen port) and publish its address."""
        port_file = Path(self.args[role][self.args[role].index("--port-file") + 1])
        port_file.unlink(missing_ok=True)
        self._spawn(role, self.args[role])
        address = self._address(role, port_file)
        if role == "coordinator":
            self.address = address
        else:
            self.node_addresses[role.removeprefix("node-")] = address
        self.federation().write(self.home.root / federation.FILE)

    def serve(self, parties: list[str], extra: dict[str, list[str]] | None = None) -> dict[str, dict[str, Any]]:
        """Start ``safehouse serve`` for ``parties`` (in that order: contributors first) and publish
        their scoring addresses in the federation file; returns each one's ``serving.json``."""
        out = {}
        for p in parties:
            published = self.home.party(p).root / SERVE_FILE
            published.unlink(missing_ok=True)
            args = ["serve", "--party", p, "--home", str(self.home.root), "--host", self.host,
                    *(extra or {}).get(p, [])]  # fmt: skip
            self._spawn(f"serve-{p}", args)
            try:
                wait_for_file(published, self.start_timeout, self.procs[f"serve-{p}"])
            except (RuntimeError, TimeoutError) as e:
                raise UnavailableError(f"scoring service of {p} did not start: {e}; see "
                                       f"{self.log_dir / f'serve-{p}.log'}") from None  # fmt: skip
            out[p] = json.loads(published.read_text())
            if "grpc" in out[p]:
                self.scoring[p] = str(out[p]["grpc"])
                self.federation().write(self.home.root / federation.FILE)
        return out

    def stop(self) -> None:
        # Coordinator first (it concludes running jobs), then the nodes.
        for role in sorted(self.procs, key=lambda r: r != "coordinator"):
            kill_group(self.procs[role], grace=20.0)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
