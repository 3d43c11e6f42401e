"""Typed errors carrying the server's ``google.rpc.Status`` and its details.

Every failure of a call (Generate, a unary RPC, the Session stream) and every
``error`` event of a Session generation is raised as a ``TokenwireError``
subclass chosen by the status code. The rich details the server sends
(``google.rpc.BadRequest``, ``RetryInfo``, ``ErrorInfo``) are decoded into
typed attributes; the raw ``status`` is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: ``field`` is a path into the request, e.g. ``sampling.top_p``."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    reason: str
    domain: str
    metadata: tuple[tuple[str, str], ...] = ()


class TokenwireError(Exception):
    """A failed call or generation.

    ``code`` is the gRPC status code; ``request_id`` is set for Session
    generations (and Generate calls that named one); ``status`` is the full
    ``google.rpc.Status`` when the server sent one.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        status: status_pb2.Status | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        violations: list[FieldViolation] = []
        retry_delay: float | None = None
        info: ErrorInfo | None = None
        for detail in status.details if status is not None else ():
            bad_request = error_details_pb2.BadRequest()
            retry = error_details_pb2.RetryInfo()
            error_info = error_details_pb2.ErrorInfo()
            if detail.Unpack(bad_request):
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                )
            elif detail.Unpack(retry):
                retry_delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            elif detail.Unpack(error_info):
                info = ErrorInfo(
                    error_info.reason, error_info.domain, tuple(sorted(error_info.metadata.items()))
                )
        self.field_violations: tuple[FieldViolation, ...] = tuple(violations)
        """``google.rpc.BadRequest`` field violations (INVALID_ARGUMENT)."""
        self.retry_delay: float | None = retry_delay
        """Seconds the server asked to wait before retrying (``google.rpc.RetryInfo``), if it said."""
        self.error_info: ErrorInfo | None = info
        """``google.rpc.ErrorInfo`` (a machine-readable reason such as ``ENGINE_QUEUE_FULL``)."""


class InvalidArgumentError(TokenwireError):
    """Bad input; ``field_violations`` names every bad field."""


class AlreadyExistsError(TokenwireError):
    """The request id is already in flight."""


class ResourceExhaustedError(TokenwireError):
    """The server is at capacity: its engine's queue is full, too many large inputs are being
    prepared, or this stream stopped reading for the server's stall timeout (``error_info.reason``
    ``READER_STALLED``: the generation was cancelled); see ``retry_delay``."""


class UnavailableError(TokenwireError):
    """The model is loading, the server is draining, or it cannot be reached."""


class DeadlineExceededError(TokenwireError):
    """The call's deadline (``timeout``) passed."""


class CallCancelledError(TokenwireError):
    """The call was cancelled (by this client or the server)."""


class InternalError(TokenwireError):
    """The server or engine failed."""


class UnauthenticatedError(TokenwireError):
    """No usable bearer token: none was sent, it was malformed, or the server does not know it."""


class PermissionDeniedError(TokenwireError):
    """The token is known but lacks the right the called service needs (the message names it)."""


class ProtocolError(TokenwireError):
    """The server broke the streaming contract (e.g. a stream ended without ``finished``)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(grpc.StatusCode.INTERNAL, message, request_id=request_id)


_BY_CODE: dict[grpc.StatusCode, type[TokenwireError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def error_from_status(status: status_pb2.Status, *, request_id: str | None = None) -> TokenwireError:
    """The typed error for a ``google.rpc.Status`` (e.g. a Session ``error`` event)."""
    code = _CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(code, TokenwireError)(code, status.message, status=status, request_id=request_id)


def error_from_rpc(error: aio.AioRpcError, *, request_id: str | None = None) -> TokenwireError:
    """The typed error for a failed gRPC call, with the rich status from its trailers when present."""
    status: status_pb2.Status | None = None
    trailers = error.trailing_metadata()
    raw = trailers.get(_STATUS_DETAILS_KEY) if trailers is not None else None
    if isinstance(raw, bytes):
        parsed = status_pb2.Status.FromString(raw)
        if parsed.code == error.code().value[0]:
            status = parsed
    code = error.code()
    message = status.message if status is not None else (error.details() or "")
    return _BY_CODE.get(code, TokenwireError)(code, message, status=status, request_id=request_id)
