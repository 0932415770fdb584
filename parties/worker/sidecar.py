"""The worker's mTLS sidecar: the only door between a worker and its peers.

SecretFlow's and SPU's links (brpc) accept plaintext on a TLS port and never
check a peer's name, so a worker's links listen only on Unix sockets in a
private directory, and this process, started by the worker and dying with it,
carries every byte between parties:

- **ingress**: a TCP port on the party's host requiring TLS 1.3 and a client
  certificate from the federation CA whose identity is one of this job's
  peers; each connection is relayed to the worker's own Unix socket.
- **egress**: a Unix socket per peer and link; each connection is relayed over
  TLS 1.3 to that peer's ingress, which must present a certificate naming that
  peer's identity.

Run as ``python -m parties.worker.sidecar CONFIG.json``; it writes CONFIG's
``ready`` file once every socket listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.controls.pki import TlsFiles

log = logging.getLogger("safehouse.sidecar")
CHUNK = 1 << 18


@dataclass(frozen=True)
class Ingress:
    host: str
    port: int
    to_unix: str
    allow: tuple[str, ...]  # certificate identities admitted


@dataclass(frozen=True)
class Egress:
    unix: str
    host: str
    port: int
    identity: str  # the identity the peer's certificate must carry


@dataclass(frozen=True)
class SidecarConfig:
    me: str
    tls: TlsFiles
    ingress: tuple[Ingress, ...]
    egress: tuple[Egress, ...]
    ready: Path

    def to_json(self) -> str:
        return json.dumps({
            "me": self.me, "ready": str(self.ready),
            "tls": {"ca": str(self.tls.ca), "cert": str(self.tls.cert), "key": str(self.tls.key)},
            "ingress": [i.__dict__ | {"allow": list(i.allow)} for i in self.ingress],
            "egress": [e.__dict__ for e in self.egress],
        }, indent=1)  # fmt: skip

    @staticmethod
    def from_json(text: str) -> SidecarConfig:
        d = json.loads(text)
        tls = TlsFiles(Path(d["tls"]["ca"]), Path(d["tls"]["cert"]), Path(d["tls"]["key"]))
        ingress = tuple(Ingress(i["host"], int(i["port"]), i["to_unix"], tuple(i["allow"])) for i in d["ingress"])
        egress = tuple(Egress(e["unix"], e["host"], int(e["port"]), e["identity"]) for e in d["egress"])
        return SidecarConfig(d["me"], tls, ingress, egress, Path(d["ready"]))


def contexts(tls: TlsFiles) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: TLS 1.3, federation CA only, certificates required both ways."""
    tls.check()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the peer's name by default
    for ctx in (server, client):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(tls.cert, tls.key)
        ctx.load_verify_locations(tls.ca)
    server.verify_mode = ssl.CERT_REQUIRED
    return server, client


def identities(peercert: dict[str, Any] | None) -> set[str]:
    return {v for k, v in (peercert or {}).get("subjectAltName", ()) if k == "DNS"}


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while chunk := await r.read(CHUNK):
            w.write(chunk)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            w.close()


def _nodelay(w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _serve_ingress(me: str, ing: Ingress, ctx: ssl.SSLContext) -> asyncio.AbstractServer:
    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        names = identities(w.get_extra_info("peercert"))
        if not names & set(ing.allow):
            log.warning("[%s] ingress %d refused a peer with identities %s", me, ing.port, sorted(names))
            w.close()
            return
        _nodelay(w)
        try:
            ur, uw = await asyncio.open_unix_connection(ing.to_unix)
        except OSError:
            w.close()
            return
        await asyncio.gather(_pipe(r, uw), _pipe(ur, w))

    # reuse_port: the node holds this port for the job (bound, not listening) until the job ends.
    return await asyncio.start_server(on_connect, ing.host, ing.port, ssl=ctx, ssl_handshake_timeout=10,
                                      reuse_port=True)  # fmt: skip


async def _serve_egress(me: str, eg: Egress, ctx: ssl.SSLContext) -> asyncio.AbstractServer:
    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(eg.host, eg.port, ssl=ctx, server_hostname=eg.identity)
        except (OSError, ssl.SSLError) as e:
            log.warning("[%s] egress to %s at %s:%d failed: %s", me, eg.identity, eg.host, eg.port, e)
            w.close()
            return
        _nodelay(uw)
        await asyncio.gather(_pipe(r, uw), _pipe(ur, w))

    Path(eg.unix).unlink(missing_ok=True)
    return await asyncio.start_unix_server(on_connect, eg.unix)


async def serve(cfg: SidecarConfig) -> None:
    server_ctx, client_ctx = contexts(cfg.tls)
    servers = [await _serve_ingress(cfg.me, i, server_ctx) for i in cfg.ingress]
    servers += [await _serve_egress(cfg.me, e, client_ctx) for e in cfg.egress]
    cfg.ready.write_text("ready")
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel kills this process when the worker that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the worker died before the call took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = SidecarConfig.from_json(Path(argv[0]).read_text())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
