"""Error codes and the one exception base for Safehouse.

Every error a user or another party may see derives from ``SafehouseError``.
Its ``code`` is part of the wire contract: the transport maps it to a status
and back; ``public`` is the text that may cross a party boundary, which never
holds another party's data.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes; the gRPC edge maps them to status codes."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_DATA = "INVALID_DATA"
    NOT_FOUND = "NOT_FOUND"
    REFUSED = "REFUSED"
    FORBIDDEN = "FORBIDDEN"
    FAILED = "FAILED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class SafehouseError(Exception):
    """Base error. ``str(err)`` is safe to show the local user."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        # What may leave this party: by default the same text, which callers
        # keep free of row values; override when the local text holds data.
        self.public = public if public is not None else message


class SpecError(SafehouseError):
    """A job spec or config file is malformed; the message names the field."""

    code = ErrorCode.INVALID_ARGUMENT


class DataError(SafehouseError):
    """A data file breaks its schema; the message names file, column and row."""

    code = ErrorCode.INVALID_DATA


class NotFoundError(SafehouseError):
    """A named job, dataset or model does not exist."""

    code = ErrorCode.NOT_FOUND


class RefusedError(SafehouseError):
    """A node refused a job (job type not installed, dataset or column unknown)."""

    code = ErrorCode.REFUSED


class ForbiddenError(SafehouseError):
    """The caller's identity may not do this (a party acting as the coordinator, say)."""

    code = ErrorCode.FORBIDDEN


class JobFailedError(SafehouseError):
    """A job ended failed or cancelled."""

    code = ErrorCode.FAILED


class UnavailableError(SafehouseError):
    """A party process could not be reached."""

    code = ErrorCode.UNAVAILABLE


BY_CODE: dict[ErrorCode, type[SafehouseError]] = {
    ErrorCode.INVALID_ARGUMENT: SpecError,
    ErrorCode.INVALID_DATA: DataError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.REFUSED: RefusedError,
    ErrorCode.FORBIDDEN: ForbiddenError,
    ErrorCode.FAILED: JobFailedError,
    ErrorCode.UNAVAILABLE: UnavailableError,
    ErrorCode.INTERNAL: SafehouseError,
}
