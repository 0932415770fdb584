"""The label owner's scoring endpoint: ``POST /score`` and ``GET /health`` over HTTPS.

It runs inside the bank's domain for the bank's own systems, so it asks for a
client certificate from the federation CA and answers only certificates that
carry an identity the service was told to trust (by default the bank's own).
Keep-alive connections are served, each on its own thread; TLS handshakes run
on that thread too, so a slow client never holds up the others.

Replies are JSON. A refusal is ``{"error": {"code": ..., "message": ...}}``
with a matching status: ``INVALID_REQUEST``/``INVALID_USCC``/``INVALID_FEATURES``
400, ``FORBIDDEN`` 403, ``UNKNOWN_FIRM``/``MODEL_NOT_LOADED``/``NOT_FOUND``
404, ``PARTNER_REFUSED`` 502, ``PARTNER_UNAVAILABLE`` 503, ``INTERNAL`` 500.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from enclave.controls.pki import TlsFiles
from parties.serving.client import peer_names
from parties.serving.scorer import Scorer, ServingError

log = logging.getLogger("safehouse.serving")
MAX_BODY = 64 * 1024


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.load_verify_locations(str(tls.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None, scorer: Scorer,
                 allowed: Callable[[list[str]], bool]) -> None:  # fmt: skip
        self.context, self.scorer, self.allowed = context, scorer, allowed
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that fails the TLS handshake or hangs up: the service carries on.
        log.info("connection from %s ended: %s", client_address, sys.exc_info()[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.context is None:
            return sock, addr
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
        super().setup()

    def _identity(self) -> str | None:
        """The caller's identity; None (after a 403) when it may not call."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return "insecure-dev"
        names = peer_names(self.connection.getpeercert())
        if not self.server.allowed(names):
            self._reply(403, {"error": {"code": "FORBIDDEN", "message": f"{names} may not call this service"}})
            return None
        return names[0]

    def do_GET(self) -> None:
        if self._identity() is None:
            return
        if self.path != "/health":
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": "try POST /score or GET /health"}})
            return
        self._reply(200, {"status": "ok", "models": self.server.scorer.loaded()})

    def do_POST(self) -> None:
        who = self._identity()
        if who is None:
            return
        if self.path != "/score":
            self._reply(404, {"error": {"code": "NOT_FOUND", "message": "try POST /score"}})
            return
        try:
            body = self._body()
            self._reply(200, self.server.scorer.score(body, who))
        except ServingError as e:
            self._reply(e.status, {"error": {"code": e.code, "message": e.message}})
        except Exception:
            log.exception("scoring failed")
            self._reply(500, {"error": {"code": "INTERNAL", "message": "internal error; see the service's log"}})

    def _body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            raise ServingError("INVALID_REQUEST", 400, f"send a JSON body of 1 to {MAX_BODY} bytes")
        try:
            return json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServingError("INVALID_REQUEST", 400, "the body is not JSON") from None

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


def start(host: str, port: int, tls: TlsFiles | None, scorer: Scorer, identities: set[str]) -> _Server:
    """Listen and serve on a background thread; returns the server (``server_address`` has the port)."""
    context = server_context(tls) if tls is not None else None
    server = _Server((host, port), context, scorer, lambda names: bool(set(names) & identities))
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
