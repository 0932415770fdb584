"""A client of a label owner's scoring endpoint (``safehouse score --online``).

It presents the party's own certificate and accepts only a server whose
certificate names the expected party identity (the federation CA signs both).
One client keeps one keep-alive connection; use one per thread.
"""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from enclave.controls import pki
from enclave.controls.pki import TlsFiles
from enclave.home import Home
from protocols.errors import NotFoundError, SafehouseError, UnavailableError

SERVE_FILE = "serving.json"


def peer_names(cert: Any) -> list[str]:
    """The DNS names a verified peer certificate carries."""
    return [str(v) for k, v in (cert or {}).get("subjectAltName", ()) if k == "DNS"]


class OnlineError(SafehouseError):
    """The service refused the call: ``code`` is its error code (e.g. ``UNKNOWN_FIRM``)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.error_code, self.status = code, status


class OnlineClient:
    def __init__(self, url: str, tls: TlsFiles | None, identity: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or not parts.port:
            raise SafehouseError(f"--url {url!r}: expected https://HOST:PORT")
        if parts.scheme == "http" and tls is not None:
            raise SafehouseError(f"--url {url!r}: the service of a secure federation speaks https")
        self.host, self.port, self.identity, self.timeout = parts.hostname, parts.port, identity, timeout
        self.context = _context(tls) if parts.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.context is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        conn.connect()
        names = peer_names(conn.sock.getpeercert() if isinstance(conn.sock, ssl.SSLSocket) else None)
        if self.identity not in names:
            conn.close()
            raise SafehouseError(f"the service at {self.host}:{self.port} is not {self.identity!r} (it is {names})")
        return conn

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):  # a kept-alive connection the server has closed gets one fresh try
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request(method, path, body=data, headers=headers)
                reply = self._conn.getresponse()
                return reply.status, json.loads(reply.read())
            except (ConnectionError, http.client.HTTPException, ssl.SSLError, OSError) as e:
                self.close()
                if attempt == 1:
                    raise UnavailableError(f"scoring service at {self.host}:{self.port}: {e}") from None
        raise AssertionError("unreachable")

    def score(self, uscc: str, model: str | None = None, features: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"uscc": uscc}
        if model:
            body["model"] = model
        if features:
            body["features"] = features
        status, doc = self.call("POST", "/score", body)
        if status != 200:
            err = doc.get("error", {})
            raise OnlineError(str(err.get("code", status)), str(err.get("message", "")), status)
        return doc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _context(tls: TlsFiles | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    # The server is checked by the identity its certificate names (below), not by host name:
    # parties are reached at addresses their certificates need not list.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if tls is not None:
        ctx.load_verify_locations(str(tls.ca))
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


def service_url(party_root: Path) -> str:
    """The endpoint a local scoring service published in its party's home."""
    path = party_root / SERVE_FILE
    if not path.is_file():
        raise NotFoundError(f"no scoring service is running for {party_root.name!r} (no {path}); "
                            f"start one with: safehouse serve --party {party_root.name}")  # fmt: skip
    doc = json.loads(path.read_text())
    if "http" not in doc:
        raise NotFoundError(f"the scoring service of {party_root.name!r} scores no model of its own")
    return str(doc["http"])


def client_for(home: Home, party: str, url: str | None = None, insecure_dev: bool = False) -> OnlineClient:
    """A client acting as ``party`` (with its certificate) towards its own scoring endpoint."""
    from enclave import federation

    tls = pki.holder_tls(home, party, insecure_dev)
    fed_file = home.root / federation.FILE
    identity = federation.load(fed_file).party(party).identity if fed_file.is_file() else party
    return OnlineClient(url or service_url(home.party(party).root), tls, identity)


def score_online(
    home: Home, model: str, uscc: str, url: str | None = None, party: str | None = None,
    features: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One firm's score from the label owner's running service (the party defaults to the model's label owner)."""
    if party is None:
        from parties.tracking import Tracker

        name, _, version = model.partition(":")
        party = str(Tracker(home.tracking_uri).manifest(name, version or None)[1]["label_party"])
    client = client_for(home, party, url, insecure_dev=bool(url and url.startswith("http://")))
    try:
        return client.score(uscc, model, features)
    finally:
        client.close()
