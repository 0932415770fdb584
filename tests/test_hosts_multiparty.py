"""Parties on separate hosts: the coordinator, the platform, two banks and a guarantor, each
in its own network namespace, under its own OS user, with its own home, trust material
and federation file, running the same commands as docker/compose.yaml.

The federation operator (this test) makes the city, the CA and the certificates in a
staging home, then hands each member only what is its own. Two banks then run jobs
with the platform at the same time, and a three-party job (platform, bank, guarantor)
runs. Each bank's outputs, model parts and audit entries stay out of the other's reach:
the other's identity is refused, and its files are outside the other's home.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enclave import federation
from enclave.data import catalogue as cat
from enclave.federation import Federation, Member
from enclave.home import Home
from parties.client import workflows
from parties.client.local import coordinator_args, node_args
from tests import netns_lab
from tests.netns_lab import Host, NetnsLab

pytestmark = pytest.mark.multiparty
PARTIES = ("platform", "bank-a", "bank-b", "guarantor")


def stage(tmp: Path) -> Home:
    """The operator's staging home: the city, its controls and every certificate."""
    home = Home.resolve(tmp / "staging")
    workflows.generate_city(home, 600, seed=11, banks=("bank-a", "bank-b"), guarantor="guarantor")
    return home


def hand_over(lab: NetnsLab, host: Host, staging: Home, fed: Federation) -> None:
    """Give one member its own part of the staging home, nothing else."""
    mine = Home.resolve(host.safehouse_home)
    if host.name == "coordinator":
        lab.install(host, staging.tls_dir("coordinator"), "safehouse/coordinator/tls")
    else:
        root = staging.party(host.name).root
        for part in ("data", "tls", "policy.yaml", "consent"):
            if (root / part).exists():
                lab.install(host, root / part, f"safehouse/parties/{host.name}/{part}")
        if host.name == "platform":  # it runs the consent service: its key and the trust in it
            lab.install(host, staging.key_dir("consent"), "safehouse/keys/consent", mode=0o600)
            lab.install(host, staging.trust_dir / "consent.pub", "safehouse/trust/consent.pub")
    lab.write_text(host, "safehouse/" + federation.FILE, json.dumps(fed.to_dict()))
    assert mine.root == host.safehouse_home


def start_roles(lab: NetnsLab, hosts: dict[str, Host], logs: Path) -> None:
    """The commands of docker/compose.yaml, each on its own host, and wait until all listen."""
    for name, host in hosts.items():
        home = str(host.safehouse_home)
        if name == "coordinator":
            args = coordinator_args(home, "0.0.0.0", 7100, f"{home}/run/coordinator.port")
        else:
            args = node_args(name, home, "0.0.0.0", 7101, f"{home}/run/node-{name}.port", name)
        lab.run(host, netns_lab.safehouse(lab, *args), log=logs / f"{name}.log")
    deadline = time.monotonic() + 90
    for name, host in hosts.items():
        port_file = host.safehouse_home / "run" / f"{'coordinator' if name == 'coordinator' else 'node-' + name}.port"
        while not port_file.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start; see {logs / (name + '.log')}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    netns_lab.require()  # a skip that says why, where namespaces cannot be made
    tmp = tmp_path_factory.mktemp("hosts")
    staging = stage(tmp)
    with NetnsLab() as lab:
        hosts = {name: lab.add_host(name) for name in ("coordinator", *PARTIES)}
        members = {p: Member(p, f"{p}:7101", p, p, (7200, 7219)) for p in PARTIES}
        fed = Federation("lab", Member("coordinator", "coordinator:7100", "coordinator"), members)
        for host in hosts.values():
            hand_over(lab, host, staging, fed)
        start_roles(lab, hosts, tmp)
        yield {"lab": lab, "hosts": hosts, "staging": staging, "logs": tmp}


def run_job(lab: NetnsLab, host: Host, staging: Home, datasets: dict[str, str], name: str) -> Any:
    """Write a spec into the submitting bank's home and start `safehouse run` there, as that bank."""
    spec = workflows.spec_for(staging, name, datasets, (host.name, cat.LABEL), trees=3, depth=3)
    doc = {**spec.to_dict(), "deployment": "remote"}
    doc["models"]["sslr"]["epochs"] = 2
    lab.write_text(host, f"{name}.yaml", json.dumps(doc))
    argv = netns_lab.safehouse(lab, "run", str(host.home / f"{name}.yaml"), "--as", host.name, "--json",
                               str(host.home / f"{name}.json"))  # fmt: skip
    return lab.run(host, argv, log=host.home / f"{name}.log")


def outcome(hosts: dict[str, Host], submitter: str, name: str, proc: Any) -> dict[str, Any]:
    host = hosts[submitter]
    rc = proc.wait(timeout=600)
    if rc != 0:
        # The lab goes with its teardown: keep every party's sidecar and worker log tails in the failure.
        files = [p for h in hosts.values() for p in h.safehouse_home.glob("parties/*/jobs/*/*.log")]
        logs = [f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in files]
        raise AssertionError(f"{name} on {host.name} exited {rc}: {(host.home / f'{name}.log').read_text()[-3000:]}\n"
                             + "\n".join(logs))  # fmt: skip
    return dict(json.loads((host.home / f"{name}.json").read_text()))


def test_two_banks_run_at_once_and_stay_apart(city: dict[str, Any]) -> None:
    lab, hosts, staging = city["lab"], city["hosts"], city["staging"]
    a = run_job(lab, hosts["bank-a"], staging, {"platform": cat.PROFILE, "bank-a": cat.LOANS}, "job-a")
    b = run_job(lab, hosts["bank-b"], staging, {"platform": cat.PROFILE, "bank-b": cat.LOANS}, "job-b")
    result_a, result_b = outcome(hosts, "bank-a", "job-a", a), outcome(hosts, "bank-b", "job-b", b)
    assert result_a["models"]["sgb"]["auc"] > 0.55 and result_b["models"]["sgb"]["auc"] > 0.55
    assert result_a["security"]["tls"].startswith("mutual TLS")
    # The platform served both: each job's part is in its home; each bank holds only its own.
    platform_models = hosts["platform"].safehouse_home / "parties" / "platform" / "models"
    assert {result_a["job_id"], result_b["job_id"]} <= {p.name for p in platform_models.iterdir()}
    bank_a, bank_b = hosts["bank-a"], hosts["bank-b"]
    a_home = bank_a.safehouse_home / "parties" / "bank-a"
    assert (a_home / "models" / result_a["job_id"] / "sgb").is_dir()
    assert (a_home / "jobs" / result_a["job_id"] / "outputs" / "scored_list.csv").is_file()
    assert not list(bank_b.home.rglob(result_a["job_id"]))
    # bank-b's user cannot read bank-a's files: they are outside its home, and not its own.
    for target in (a_home / "audit.jsonl", a_home / "models" / result_a["job_id"] / "sgb"):
        r = lab.exec(bank_b, ["ls", "-l", str(target)])
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # bank-b's identity cannot follow bank-a's job at the coordinator, nor act as the coordinator at bank-a's node.
    probe = (
        "from enclave.controls.pki import TlsFiles\n"
        "from parties.transport.grpc_links import GrpcCoordinatorLink, GrpcNodeLink\n"
        "from protocols.errors import ForbiddenError\n"
        f"tls = TlsFiles.in_dir(__import__('pathlib').Path({str(bank_b.safehouse_home / 'parties/bank-b/tls')!r}))\n"
        "for call in (lambda: GrpcCoordinatorLink('coordinator:7100', tls).status(JOB),\n"
        "             lambda: GrpcNodeLink('bank-a', 'bank-a:7101', tls).outputs(JOB)):\n"
        "    try:\n        call()\n        print('ALLOWED')\n"
        "    except ForbiddenError as e:\n        print('REFUSED', e)\n"
    ).replace("JOB", repr(result_a["job_id"]))
    r = lab.exec(bank_b, [str(lab.venv / "bin" / "python"), "-c", probe])
    assert r.stdout.count("REFUSED") == 2 and "ALLOWED" not in r.stdout, r.stdout + r.stderr
    # Each bank's audit entries are in its own trail only.
    a_trail = (a_home / "audit.jsonl").read_text()
    b_trail = (bank_b.safehouse_home / "parties" / "bank-b" / "audit.jsonl").read_text()
    assert result_a["job_id"] in a_trail and result_a["job_id"] not in b_trail


def test_a_three_party_job_across_hosts(city: dict[str, Any]) -> None:
    lab, hosts, staging = city["lab"], city["hosts"], city["staging"]
    datasets = {"platform": cat.PROFILE, "bank-a": cat.LOANS, "guarantor": cat.GUARANTEES}
    result = outcome(hosts, "bank-a", "job-three", run_job(lab, hosts["bank-a"], staging, datasets, "job-three"))
    assert {"sgb", "sslr", "bank_only"} <= set(result["models"]) and result["psi"]["intersection"] > 100
    guarantor = hosts["guarantor"].safehouse_home / "parties" / "guarantor"
    assert (guarantor / "models" / result["job_id"] / "sslr" / "weights.npy").is_file()
