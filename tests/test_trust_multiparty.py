"""The trust foundation with real processes: every port refuses whoever is not the
federation, identities cannot be borrowed, and peers cannot run code in a worker.

Probes speak to the ports as an outsider would: a plaintext client, a TLS client
with no certificate, one with a certificate from another CA, and one holding a
genuine federation certificate issued to a party that is not in the job.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from enclave.controls import pki
from enclave.controls.pki import TlsFiles
from enclave.home import Home
from parties.client.local import LocalCluster
from parties.transport.grpc_links import GrpcCoordinatorLink, GrpcNodeLink
from protocols.errors import ForbiddenError, UnavailableError
from tests.test_multiparty import city, spec_for, wait_until

pytestmark = pytest.mark.multiparty
REQUEST = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"


def listening(cluster: LocalCluster) -> dict[int, str]:
    """Every TCP port any process of the cluster listens on -> which process."""
    ports: dict[int, str] = {}
    for role, proc in cluster.procs.items():
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                conns = p.net_connections(kind="tcp")
                name = " ".join(p.cmdline()[1:3])
            except psutil.NoSuchProcess:
                continue
            for c in conns:
                if c.status == psutil.CONN_LISTEN:
                    ports[c.laddr.port] = f"{role}: {name}"
    return ports


def plaintext_answer(port: int) -> bytes:
    """What a plaintext client gets back: nothing, or a TLS alert, from a port that refuses it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(3)
        try:
            s.sendall(REQUEST)
            return s.recv(4096)
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            return b""


def tls_answer(port: int, ca: Path, files: TlsFiles | None) -> str:
    """'refused', or what the server said, to a TLS client with ``files`` (or no certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    if files is not None:
        ctx.load_cert_chain(files.cert, files.key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
            s.settimeout(3)
            s.sendall(REQUEST)
            data = s.recv(4096)
            return f"answered {data[:40]!r}" if data else "refused"
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
        return "refused"


@pytest.fixture
def outsiders(tmp_path: Path, small_city_home: Home) -> dict[str, Any]:
    """A rogue CA's certificate, and a genuine federation certificate for a party outside the job."""
    home = city(small_city_home, tmp_path)
    rogue_pki = tmp_path / "rogue-pki"
    pki.init_ca(rogue_pki)
    rogue = pki.issue(rogue_pki, "platform", tmp_path / "rogue")
    stranger = pki.issue(home.pki_dir, "bank-a", tmp_path / "bank-a", ["127.0.0.1"])
    return {"home": home, "rogue": rogue, "stranger": stranger}


def test_every_port_of_a_running_job_refuses_outsiders(outsiders: dict[str, Any], cluster_factory: Any) -> None:
    home: Home = outsiders["home"]
    spec = spec_for(home, trees=60)
    cluster: LocalCluster = cluster_factory(home, spec.party_names)
    client = GrpcCoordinatorLink(cluster.address, pki.holder_tls(home, "bank"))
    job_id = client.submit(spec.to_yaml()).job_id
    running = wait_until(client, job_id, lambda s: any(p.detail.startswith("tree") for p in s.parties), 180)
    assert not running.state.terminal, running.detail
    ports = listening(cluster)
    roles = {r.split(":")[0] for r in ports.values()}
    # Nodes, the coordinator and both parties' link sidecars; no worker holds a TCP port itself.
    assert {"coordinator", "node-platform", "node-bank"} <= roles, ports
    assert sum("parties.worker.sidecar" in r for r in ports.values()) == 4, ports
    assert not [r for r in ports.values() if r.endswith("-m parties.worker")], ports
    ca = home.pki_dir / pki.CA_CERT
    for port, who in ports.items():
        answer = plaintext_answer(port)
        assert answer == b"" or answer[:1] == b"\x15", f"{who} on {port} answered plaintext: {answer[:60]!r}"
        assert tls_answer(port, ca, None) == "refused", f"{who} on {port} served a client without a certificate"
        assert tls_answer(port, ca, outsiders["rogue"]) == "refused", f"{who} on {port} served another CA's client"
        if "sidecar" in who:
            # A genuine federation certificate of a party outside this job is refused too.
            assert tls_answer(port, ca, outsiders["stranger"]) == "refused", f"{who} on {port} served bank-a"
    client.cancel(job_id)


def test_a_certificate_cannot_act_as_another_identity(outsiders: dict[str, Any], cluster_factory: Any) -> None:
    home: Home = outsiders["home"]
    spec = spec_for(home)
    cluster: LocalCluster = cluster_factory(home, spec.party_names)
    bank_a: TlsFiles = outsiders["stranger"]
    # bank-a may not act as the coordinator towards a node...
    as_coordinator = GrpcNodeLink("platform", cluster.node_addresses["platform"], bank_a)
    with pytest.raises(ForbiddenError, match=r"bank-a may not prepare jobs on this node"):
        as_coordinator.prepare("j-1", spec.to_yaml())
    # ...nor submit or follow a job between the platform and the bank...
    as_party = GrpcCoordinatorLink(cluster.address, bank_a)
    with pytest.raises(ForbiddenError, match="'bank-a' is not a party of this job"):
        as_party.submit(spec.to_yaml())
    # ...nor pass for the platform's node: the coordinator's side checks the server's name.
    impostor = GrpcNodeLink("platform", cluster.node_addresses["bank"], TlsFiles.in_dir(home.tls_dir("coordinator")))
    t0 = time.monotonic()
    with pytest.raises(UnavailableError):
        impostor.status("j-1")
    assert time.monotonic() - t0 < 30


class Exec:
    """A message whose unpickling runs code: ``builtins.exec`` passes SecretFlow's own blacklist."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.target)!r}, 'w').write('code ran in the worker')",))


def push(port: int, sender_rank: int, key: str, value: bytes) -> bytes:
    """One message on a worker's link as brpc frames it (HTTP POST of a protobuf PushRequest)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    k = key.encode()
    body = b"\x08" + varint(sender_rank) + b"\x12" + varint(len(k)) + k + b"\x1a" + varint(len(value)) + value
    head = (b"POST /org.interconnection.link.ReceiverService/Push HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/proto\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        return s.recv(4096)


def attack(tmp_path: Path, harden: bool) -> tuple[bool, str]:
    """Run a two-party link, push a crafted pickle into the bank's receive path; did it run code?"""
    import json
    import pickle
    import subprocess
    import sys

    from parties.procs import free_ports, kill_group

    out = tmp_path / ("hardened" if harden else "stock")
    out.mkdir()
    ports = free_ports(4)
    cfg = {"ports": {"bank": ports[:2], "platform": ports[2:]}, "harden": harden, "out": str(out), "run": out.name}
    (out / "cfg.json").write_text(json.dumps(cfg))
    script = Path(__file__).resolve().parent / "helpers" / "link_victim.py"
    procs = {p: subprocess.Popen([sys.executable, str(script), p, str(out / "cfg.json")], cwd=out,
                                 stdout=(out / f"{p}.log").open("wb"), stderr=subprocess.STDOUT,
                                 start_new_session=True) for p in ("bank", "platform")}  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not all((out / f"ready-{p}").exists() for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the bank now waits in the link's receive path for the platform's first message
        message = pickle.dumps({"seq_id": -1, "payload": Exec(out / "PWNED"), "job": "another-job"}, protocol=4)
        push(ports[0], 1, "root:P2P-1:1->0\x01\x02900001", message)
        # A poisoned link never recovers (its real message now looks like a duplicate):
        # wait until the code ran, or the bank gave up, or long enough to be sure.
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and procs["bank"].poll() is None and not (out / "PWNED").exists():
            time.sleep(0.2)
    finally:
        for p in procs.values():
            kill_group(p)
    return (out / "PWNED").exists(), (out / "bank.log").read_text(errors="replace")


def test_a_crafted_pickle_from_the_link_is_refused(tmp_path: Path) -> None:
    # Control: SecretFlow as shipped runs the attacker's code, so the attack is real.
    ran, _ = attack(tmp_path, harden=False)
    assert ran, "the crafted message did not reach an unhardened worker: the test would prove nothing"
    ran, log = attack(tmp_path, harden=True)
    assert not ran, "a crafted pickle ran code in a hardened worker"
    assert "peer message refused: it names builtins.exec, which is not on the allow-list" in log, log[-3000:]


def test_plaintext_only_behind_the_insecure_dev_flag(small_city_home: Home, tmp_path: Path) -> None:
    import json
    import subprocess

    from parties.client.local import safehouse_command

    home = city(small_city_home, tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text(spec_for(home).to_yaml())
    out = tmp_path / "out.json"
    r = subprocess.run([*safehouse_command(), "--home", str(home.root), "run", str(spec), "--insecure-dev", "--json",
                        str(out)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(out.read_text())["security"]["tls"] == "none (--insecure-dev)"
    logs = (home.log_dir / "node-bank.log").read_text()
    assert "PLAINTEXT (--insecure-dev)" in logs
