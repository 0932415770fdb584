"""The gRPC edge shared by every role: mutually authenticated servers and channels,
the caller's identity, and error mapping.

Every server requires a client certificate signed by the federation CA, and
every channel presents its own and checks that the server's certificate names
the identity it meant to reach (a party, or ``coordinator``). Plaintext is for
``--insecure-dev`` only. A ``SafehouseError`` becomes a gRPC status carrying
only its public text (its code rides in trailing metadata); any other
exception is logged in full here and sent as a bare INTERNAL status. On the
client side the status becomes the matching ``SafehouseError`` again.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc

from enclave.controls.pki import TlsFiles
from enclave.files import write_atomic
from protocols.errors import (
    BY_CODE,
    DataError,
    ErrorCode,
    ForbiddenError,
    JobFailedError,
    NotFoundError,
    RefusedError,
    SafehouseError,
    SpecError,
    UnavailableError,
)

log = logging.getLogger("safehouse.rpc")

_TO_STATUS = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.INVALID_DATA: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.REFUSED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.FAILED: grpc.StatusCode.ABORTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}
_FROM_STATUS: dict[grpc.StatusCode, type[SafehouseError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: SpecError,
    grpc.StatusCode.FAILED_PRECONDITION: DataError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: RefusedError,
    grpc.StatusCode.ABORTED: JobFailedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}
CODE_KEY = "safehouse-code"
MAX_MESSAGE = 64 * 1024 * 1024
_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]

F = TypeVar("F", bound=Callable[..., Any])


def handler(fn: F) -> F:
    """Wrap a servicer method: map errors to statuses with sanitised text."""

    @functools.wraps(fn)
    def wrapped(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except SafehouseError as e:
            log.warning("%s refused: %s", fn.__name__, e)
            context.set_trailing_metadata(((CODE_KEY, e.code.value),))
            context.abort(_TO_STATUS[e.code], e.public)
        except Exception:
            log.exception("%s failed", fn.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {fn.__name__}; see the server's log")

    return wrapped  # type: ignore[return-value]


def peer_identity(context: grpc.ServicerContext) -> str:
    """The identity (first SAN DNS name) of the caller's verified certificate; "" without TLS."""
    auth = context.auth_context()
    names = auth.get("x509_subject_alternative_name") or []
    return names[0].decode() if names else ""


def require(context: grpc.ServicerContext, allowed: Callable[[str], bool], what: str) -> str:
    """The caller's identity, if it may do ``what``; else a refusal naming the identity."""
    who = peer_identity(context)
    if not allowed(who):
        raise ForbiddenError(f"{who or 'an unauthenticated caller'} may not {what}")
    return who


def serve(
    register: Callable[[grpc.Server], None], host: str, port: int, tls: TlsFiles | None
) -> tuple[grpc.Server, int]:
    """Listen with mutual TLS (federation CA, client certificate required), or in plaintext
    when ``tls`` is None (``--insecure-dev`` only)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=_OPTIONS)
    register(server)
    if tls is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        ca, cert, key = tls.read()
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
        bound = server.add_secure_port(f"{host}:{port}", creds)
    if bound == 0:
        raise UnavailableError(f"could not listen on {host}:{port}")
    server.start()
    return server, bound


def run_until_signalled(
    name: str, register: Callable[[grpc.Server], None], host: str, port: int, port_file: Path | None,
    on_stop: Callable[[], None], tls: TlsFiles | None,
) -> int:  # fmt: skip
    """Serve until SIGTERM/SIGINT, publishing the bound port; ``on_stop`` ends jobs first."""
    server, bound = serve(register, host, port, tls)
    log.info("%s listening on %s:%d", name, host, bound)
    if port_file is not None:
        write_atomic(port_file, str(bound))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("%s stopping", name)
    on_stop()
    server.stop(grace=1).wait()
    return 0


def channel(address: str, tls: TlsFiles | None, expect: str) -> grpc.Channel:
    """A channel to ``address`` that accepts only a server whose certificate names ``expect``."""
    if tls is None:
        return grpc.insecure_channel(address, options=_OPTIONS)
    ca, cert, key = tls.read()
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, creds, options=[*_OPTIONS, ("grpc.ssl_target_name_override", expect)])


def call(what: str, fn: Callable[..., Any], request: Any, timeout: float = 30.0) -> Any:
    """Invoke a stub method, turning gRPC errors into SafehouseErrors."""
    try:
        return fn(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        details = e.details() if hasattr(e, "details") else str(e)
        cls = _FROM_STATUS.get(code, SafehouseError)
        trailing = dict(e.trailing_metadata() or ()) if hasattr(e, "trailing_metadata") else {}
        if trailing.get(CODE_KEY) in ErrorCode.__members__:
            cls = BY_CODE[ErrorCode(trailing[CODE_KEY])]
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"{what}: unreachable ({details})"
        raise cls(details) from None
