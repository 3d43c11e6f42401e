"""The service's error hierarchy and its one mapping to gRPC status.

Every failure a caller can see is a ``ServiceError``. ``to_rpc_status`` turns
one into a ``google.rpc.Status`` with rich details (BadRequest, RetryInfo,
ErrorInfo); Generate and the unary RPCs send it as the call's status, Session
sends it as an ``error`` event. Nothing else builds statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from engines.contract import EngineError, EngineOverloaded
from service.durations import duration

ERROR_DOMAIN = "tokenwire.v1"
MAX_VIOLATIONS = 20
"""Field violations sent in one status; the rest are counted in its message."""
MAX_FIELD_CHARS = 128
MAX_DESCRIPTION_CHARS = 256
MAX_MESSAGE_CHARS = 1024
"""Everything a status carries is bounded: a few KB at most, whatever the request held."""

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: ``field`` is a path into the request (``sampling.top_p``)."""

    field: str
    description: str


class ServiceError(Exception):
    """Base of every error the service reports to callers."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        message = clip(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with "..." when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quoted(value: str, limit: int = 32) -> str:
    """A caller's string for a message or log: repr'd, and cut when long (never unbounded)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self, violations: list[FieldViolation], message: str | None = None, *, total: int | None = None
    ) -> None:
        """At most ``MAX_VIOLATIONS`` are kept (each clipped); the message counts the rest.

        ``total``: how many there were, when the caller stopped listing them early.
        """
        count = max(total or 0, len(violations))
        kept = [
            FieldViolation(clip(v.field, MAX_FIELD_CHARS), clip(v.description, MAX_DESCRIPTION_CHARS))
            for v in violations[:MAX_VIOLATIONS]
        ]
        if message is None:
            shown = kept[:3]
            message = "; ".join(f"{v.field}: {v.description}" for v in shown)
            if count > len(shown):
                message += f" (and {count - len(shown)} more field violations"
                if count > len(kept):
                    message += f"; the first {len(kept)} are in the details"
                message += ")"
        super().__init__(message)
        self.violations = tuple(kept)
        self.total_violations = count


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "REQUEST_ID_IN_FLIGHT"


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "ENGINE_QUEUE_FULL"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(ServiceError):
    """No usable bearer token: missing, not ``Bearer``, malformed or unknown."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """A known token without the right the called service needs."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ReaderStalled(ResourceExhausted):
    """The stream's reader took nothing for the stall timeout while output was pending."""

    reason = "READER_STALLED"


class Internal(ServiceError):
    code = grpc.StatusCode.INTERNAL
    reason = "ENGINE_ERROR"


def from_exception(error: BaseException) -> ServiceError:
    """The ``ServiceError`` a caller should see for ``error``."""
    match error:
        case ServiceError():
            return error
        case EngineOverloaded():
            return ResourceExhausted(str(error), error.retry_after_s)
        case EngineError():
            return Internal(f"engine error: {error}")
        case _:
            return Internal(f"internal error: {type(error).__name__}")


def _pack(
    message: error_details_pb2.BadRequest | error_details_pb2.RetryInfo | error_details_pb2.ErrorInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_rpc_status(error: ServiceError) -> status_pb2.Status:
    """``error`` as a ``google.rpc.Status`` with its details."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))]
    match error:
        case InvalidArgument():
            details.append(
                _pack(
                    error_details_pb2.BadRequest(
                        field_violations=[
                            error_details_pb2.BadRequest.FieldViolation(
                                field=v.field, description=v.description
                            )
                            for v in error.violations
                        ]
                    )
                )
            )
        case Unavailable() | ResourceExhausted():
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=duration(error.retry_after_s))))
        case _:
            pass
    code: int = error.code.value[0]
    assert code_pb2.Code.Name(code)  # every grpc.StatusCode is a google.rpc.Code
    return status_pb2.Status(code=code, message=error.message, details=details)


async def abort(context: aio.ServicerContext[RequestT, ResponseT], error: BaseException) -> NoReturn:
    """End the current call with the status for ``error``."""
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(from_exception(error))))
    raise AssertionError("abort_with_status returned")  # it always raises
