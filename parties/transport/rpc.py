"""The gRPC edge shared by every role: servers, channels and error mapping.

A ``SafehouseError`` becomes a gRPC status carrying only its public text; any
other exception is logged in full here and sent as a bare INTERNAL status.
On the client side the status becomes the matching ``SafehouseError`` again.
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

from enclave.files import write_atomic
from protocols.errors import (
    DataError,
    ErrorCode,
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
            context.abort(_TO_STATUS[e.code], e.public)
        except Exception:
            log.exception("%s failed", fn.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {fn.__name__}; see the server's log")

    return wrapped  # type: ignore[return-value]


def serve(register: Callable[[grpc.Server], None], host: str, port: int) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=_OPTIONS)
    register(server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise UnavailableError(f"could not listen on {host}:{port}")
    server.start()
    return server, bound


def run_until_signalled(
    name: str, register: Callable[[grpc.Server], None], host: str, port: int, port_file: Path | None,
    on_stop: Callable[[], None],
) -> int:  # fmt: skip
    """Serve until SIGTERM/SIGINT, publishing the bound port; ``on_stop`` ends jobs first."""
    server, bound = serve(register, host, port)
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


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=_OPTIONS)


def call(what: str, fn: Callable[..., Any], request: Any, timeout: float = 30.0) -> Any:
    """Invoke a stub method, turning gRPC errors into SafehouseErrors."""
    try:
        return fn(request, timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        details = e.details() if hasattr(e, "details") else str(e)
        cls = _FROM_STATUS.get(code, SafehouseError)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            details = f"{what}: unreachable ({details})"
        raise cls(details) from None
