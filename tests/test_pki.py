"""The federation's PKI, federation file and key pinning, without processes."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from enclave import federation
from enclave.controls import keys, pki
from enclave.home import Home
from parties.client.local import safehouse_command
from protocols.errors import SpecError


def cli(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*safehouse_command(), "--home", str(home.root), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_pki_init_and_issue_through_the_cli(home: Home) -> None:
    r = cli(home, "pki", "init")
    assert r.returncode == 0, r.stderr
    assert cli(home, "pki", "init").returncode == 2  # one CA per federation unless --force
    for name in ("bank-a", "coordinator"):
        r = cli(home, "pki", "issue", name, "--host", "10.0.0.7")
        assert r.returncode == 0, r.stderr
        files = pki.TlsFiles.in_dir(home.tls_dir(name))
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
        assert pki.identity_of(files.cert.read_bytes()) == name
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
        ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
        cert.verify_directly_issued_by(ca)
    assert home.party("bank-a").tls_dir == home.tls_dir("bank-a")
    r = cli(home, "pki", "issue", "Bank A")
    assert r.returncode == 2 and "name 'Bank A' is invalid" in r.stderr


def test_issuing_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no federation CA here; run `safehouse pki init` first"):
        pki.issue(tmp_path / "nope", "bank", tmp_path / "out")


@pytest.mark.parametrize("name", ["coordinator", "consent", "ca"])
def test_role_names_are_reserved_for_roles(home: Home, name: str) -> None:
    with pytest.raises(SpecError, match=f"party name {name!r} is reserved"):
        home.party(name)


def test_trust_entries_are_pinned(home: Home, tmp_path: Path) -> None:
    first = keys.load_or_create(home.key_dir("consent"), "consent", home.trust_dir)
    again = keys.load_or_create(home.key_dir("consent"), "consent", home.trust_dir)
    assert again.key_id == first.key_id
    with pytest.raises(keys.PinnedKeyError, match="another key is already trusted as 'consent'"):
        keys.load_or_create(tmp_path / "intruder", "consent", home.trust_dir)
    assert {name for name, _ in keys.trusted(home.trust_dir).values()} == {"consent"}


def test_signing_keys_live_apart_from_the_trails_they_sign(home: Home) -> None:
    from enclave.controls import audit

    log = audit.party_log(home, "bank")
    log.append("job_request", "j1", {})
    assert log.path.parent == home.party("bank").root
    assert not list(home.party("bank").root.rglob("*.key"))
    assert (home.key_dir("bank") / "bank.key").is_file()


FED: dict[str, Any] = {
    "name": "zz",
    "coordinator": {"address": "10.0.0.1:7100"},
    "parties": {
        "platform": {"node": "10.0.0.2:7101", "host": "10.0.0.2", "worker_ports": "7200-7299"},
        "bank-a": {"node": "10.0.0.3:7101", "host": "10.0.0.3"},
    },
}


def test_federation_file_round_trips_and_names_faults(tmp_path: Path) -> None:
    fed = federation.parse(FED, "f.yaml")
    assert fed.party("platform").worker_ports == (7200, 7299) and fed.party("bank-a").identity == "bank-a"
    assert fed.party("platform").allows_port(7250) and not fed.party("platform").allows_port(7300)
    fed.write(tmp_path / "federation.yaml")
    assert federation.load(tmp_path / "federation.yaml") == fed
    with pytest.raises(SpecError, match="party 'bank-b' is not in the federation"):
        fed.party("bank-b")
    bad = {**FED, "parties": {**FED["parties"], "bank-a": {"node": "10.0.0.3", "host": "h"}}}
    with pytest.raises(SpecError, match=r"f.yaml: parties.bank-a.node: expected host:port, got '10.0.0.3'"):
        federation.parse(bad, "f.yaml")
    bad = {**FED, "parties": {**FED["parties"], "coordinator": {"node": "h:1", "host": "h"}}}
    with pytest.raises(SpecError, match="party name 'coordinator' is reserved"):
        federation.parse(bad, "f.yaml")
    bad = {
        **FED,
        "parties": {
            "platform": FED["parties"]["platform"],
            "bank-a": {"node": "h:1", "host": "h", "identity": "platform"},
        },
    }
    with pytest.raises(SpecError, match="two members share one certificate identity"):
        federation.parse(bad, "f.yaml")
