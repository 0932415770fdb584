"""Where a worker's links listen and dial, and what its sidecar relays.

With TLS (every deployment but ``--insecure-dev``) a worker's own links
listen on Unix sockets in a private directory, peers are dialled through Unix
sockets the sidecar serves, and only the sidecar holds TCP ports, all mutually
authenticated and pinned to the job's peers. Without TLS the links use TCP
directly, for development only.

Unix socket paths are limited to about 100 bytes, so the directory is a short
one under the system's temporary directory, made by ``mkdtemp`` (an unguessable
name, mode 0700, owned by this party's user, so no other local user can
pre-create it or connect); its path is recorded in the job directory so the
node removes it with the job.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.controls.pki import TlsFiles
from parties.worker.sidecar import Egress, Ingress, SidecarConfig
from protocols.messages import Endpoint

SOCKET_DIR_FILE = "sockets.path"
# The system's temporary directory, read once: a worker points TMPDIR into its job
# directory later, whose paths are too long for Unix sockets.
SOCKET_BASE = Path(tempfile.gettempdir())


def make_socket_dir(job_dir: Path) -> Path:
    d = Path(tempfile.mkdtemp(prefix="sh-", dir=SOCKET_BASE))
    (job_dir / SOCKET_DIR_FILE).write_text(str(d))
    return d


def remove_socket_dir(job_dir: Path) -> None:
    record = job_dir / SOCKET_DIR_FILE
    if record.is_file():
        d = Path(record.read_text().strip())
        if d.parent == SOCKET_BASE and d.name.startswith("sh-"):
            shutil.rmtree(d, ignore_errors=True)
        record.unlink(missing_ok=True)


@dataclass(frozen=True)
class LinkPlan:
    parties: dict[str, dict[str, str]]  # sf.init cluster_config["parties"], in cluster order
    spu_nodes: list[dict[str, str]]  # sf.SPU cluster_def["nodes"]
    sidecar: SidecarConfig | None


def spu_parties(cluster: list[Endpoint], label_party: str) -> list[str]:
    """The two SPU nodes: the label owner and the first other party (CHEETAH is two-party);
    any further party shares its inputs into them."""
    others = [e.party for e in cluster if e.party != label_party]
    return [label_party, others[0]]


def plan(
    me: str, cluster: list[Endpoint], spu: list[str], tls: TlsFiles | None, identities: Mapping[str, str],
    bind_host: str, job_dir: Path,
) -> LinkPlan:  # fmt: skip
    if tls is None:
        return _plaintext(me, cluster, spu)
    d = make_socket_dir(job_dir)
    parties: dict[str, dict[str, str]] = {}
    nodes: list[dict[str, str]] = []
    ingress: list[Ingress] = []
    egress: list[Egress] = []
    peers = [e.party for e in cluster if e.party != me]
    for e in cluster:
        for kind, port, members in (("link", e.link_port, [p.party for p in cluster]), ("spu", e.spu_port, spu)):
            if me not in members or e.party not in members:
                continue
            if e.party == me:
                own = f"{d}/{kind}.sock"
                allow = tuple(identities[p] for p in peers if p in members)
                ingress.append(Ingress(bind_host, port, own, allow))
                address = listen = f"unix:{own}"
            else:
                via = f"{d}/to-{e.party}-{kind}.sock"
                egress.append(Egress(via, e.host, port, identities[e.party]))
                address = listen = f"unix:{via}"
            if kind == "link":
                parties[e.party] = {"address": address, "listen_addr": listen}
            else:
                nodes.append({"party": e.party, "address": address, "listen_address": listen})
    if me not in spu:
        # Every party builds the SPU device with the same nodes, or their call sequences
        # drift apart; a party outside it never dials or listens on these addresses.
        nodes = [{"party": e.party, "address": f"{e.host}:{e.spu_port}", "listen_address": ""}
                 for e in cluster if e.party in spu]  # fmt: skip
    sidecar = SidecarConfig(me, tls, tuple(ingress), tuple(egress), d / "ready")
    return LinkPlan(parties, nodes, sidecar)


def _plaintext(me: str, cluster: list[Endpoint], spu: list[str]) -> LinkPlan:
    parties = {e.party: {"address": f"{e.host}:{e.link_port}", "listen_addr": f"0.0.0.0:{e.link_port}"}
               for e in cluster}  # fmt: skip
    nodes = [
        {"party": e.party, "address": f"{e.host}:{e.spu_port}", "listen_address": f"0.0.0.0:{e.spu_port}"}
        for e in cluster
        if e.party in spu
    ]
    return LinkPlan(parties, nodes, None)


def security(tls: bool, spu_used: bool, he: Any) -> dict[str, str]:
    """How this worker's links and devices are protected, for the job summary."""
    out = {
        "tls": "mutual TLS 1.3, federation CA, peers pinned by identity" if tls else "none (--insecure-dev)",
        "peer_messages": "exact allow-list unpickling; SPU programs compiled at every node",
    }
    if spu_used:
        out |= {"spu_protocol": "CHEETAH", "spu_field": "FM64",
                "beaver": "none: CHEETAH uses oblivious transfer and lattice HE, no dealer"}  # fmt: skip
    if he is not None:
        out |= {"he_schema": he.schema, "he_key_bits": str(he.key_bits)}
    return out
