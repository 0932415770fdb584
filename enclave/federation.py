"""The federation file: who takes part, where each one is reached, and who it is.

Every party holds a copy (``federation.yaml`` in its home by default). It lists
the coordinator's address and each party's node address, the host its workers
listen on, the identity its certificate carries and, optionally, the ports its
workers may use. Nodes dial only what their own copy says, whatever a caller
sends; the coordinator dials only the nodes listed here, never an address from
a job spec.

    name: zhengzhou
    coordinator: {address: "10.0.0.1:7100"}
    parties:
      platform: {node: "10.0.0.2:7101", host: 10.0.0.2, worker_ports: 7200-7299}
      bank-a: {node: "10.0.0.3:7101", host: 10.0.0.3, scoring: "10.0.0.3:7102"}

``scoring`` names a party's online scoring service (``safehouse serve``), when it runs one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from enclave.fields import Fields
from enclave.files import write_atomic
from enclave.home import check_name
from protocols.errors import SpecError

FILE = "federation.yaml"


@dataclass(frozen=True)
class Member:
    name: str
    address: str  # control plane, host:port
    identity: str  # the SAN DNS name its certificate carries
    host: str = ""  # where its workers listen (parties only)
    worker_ports: tuple[int, int] | None = None  # inclusive range, when the party fixes one
    scoring: str | None = None  # its online scoring service (safehouse serve), host:port

    def allows_port(self, port: int) -> bool:
        return self.worker_ports is None or self.worker_ports[0] <= port <= self.worker_ports[1]


@dataclass(frozen=True)
class Federation:
    name: str
    coordinator: Member
    parties: Mapping[str, Member]

    def party(self, name: str) -> Member:
        if name not in self.parties:
            raise SpecError(f"party {name!r} is not in the federation (members: {sorted(self.parties)})")
        return self.parties[name]

    def to_dict(self) -> dict[str, Any]:
        def one(m: Member, node: bool) -> dict[str, Any]:
            d: dict[str, Any] = {"node" if node else "address": m.address}
            if m.identity != m.name:
                d["identity"] = m.identity
            if node:
                d["host"] = m.host
            if m.worker_ports is not None:
                d["worker_ports"] = f"{m.worker_ports[0]}-{m.worker_ports[1]}"
            if m.scoring is not None:
                d["scoring"] = m.scoring
            return d

        return {
            "name": self.name,
            "coordinator": one(self.coordinator, False),
            "parties": {n: one(m, True) for n, m in self.parties.items()},
        }

    def write(self, path: Path) -> None:
        write_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _address(f: Fields, key: str) -> str:
    v = f.str_(key)
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"{f.where(key)}: expected host:port, got {v!r}")
    return v


def _ports(f: Fields) -> tuple[int, int] | None:
    raw = f.get("worker_ports", None)
    if raw is None:
        return None
    lo, sep, hi = str(raw).partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit() or not 0 < int(lo) <= int(hi) < 65536 or int(hi) - int(lo) < 1:
        raise SpecError(f"{f.where('worker_ports')}: expected a range like 7200-7299 (two ports at least), got {raw!r}")
    return int(lo), int(hi)


def parse(raw: Any, source: str) -> Federation:
    top = Fields(raw, "", source)
    name = top.name("name", "federation")
    c = top.sub("coordinator")
    coordinator = Member("coordinator", _address(c, "address"), c.name("identity", "coordinator"))
    c.done()
    pf = top.sub("parties")
    parties: dict[str, Member] = {}
    for raw_name in pf.raw:
        pname = check_name("party", str(raw_name))
        one = pf.sub(pname)
        scoring = _address(one, "scoring") if one.has("scoring") else None
        parties[pname] = Member(pname, _address(one, "node"), one.name("identity", pname), one.str_("host"),
                                _ports(one), scoring)  # fmt: skip
        one.done()
    pf.done()
    top.done()
    if len(parties) < 2:
        raise SpecError(f"{source}: parties: a federation needs at least two parties")
    identities = [coordinator.identity, *(m.identity for m in parties.values())]
    if len(set(identities)) != len(identities):
        raise SpecError(f"{source}: two members share one certificate identity: {sorted(identities)}")
    return Federation(name, coordinator, parties)


_cache: dict[Path, tuple[int, Federation]] = {}


def load(path: Path) -> Federation:
    """The federation in ``path``, parsed again only when the file changed."""
    if not path.is_file():
        raise SpecError(f"{path}: federation file not found")
    stamp = path.stat().st_mtime_ns
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    fed = parse(raw, str(path))
    _cache[path] = (stamp, fed)
    return fed


LOCAL = "local"  # the name of a federation one machine's local launcher writes


def publish_local_scoring(path: Path, party: str, address: str) -> bool:
    """In a local federation (every role on this machine, one shared file), record ``party``'s
    scoring address; returns False, changing nothing, for any other federation."""
    import fcntl

    with (path.parent / f".{path.name}.lock").open("a") as lock:
        # Several services may start at once; each rewrites the whole file.
        fcntl.flock(lock, fcntl.LOCK_EX)
        fed = load(path)
        if fed.name != LOCAL:
            return False
        member = replace(fed.party(party), scoring=address)
        replace(fed, parties={**fed.parties, party: member}).write(path)
    return True
