"""The service's error hierarchy and its one mapping to gRPC status.

Every failure a caller can see is a ``ServiceError``. ``to_rpc_status`` turns
one into a ``google.rpc.Status`` with rich details (BadRequest, RetryInfo,
ErrorInfo); Generate and the unary RPCs send it as the call's status, Session
sends it as an ``error`` event. Nothing else builds statuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from engines.contract import EngineError, EngineOverloaded

ERROR_DOMAIN = "tokenwire.v1"

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
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        summary = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(summary)
        self.violations = tuple(violations)


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


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


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
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=_duration(error.retry_after_s))))
        case _:
            pass
    code: int = error.code.value[0]
    assert code_pb2.Code.Name(code)  # every grpc.StatusCode is a google.rpc.Code
    return status_pb2.Status(code=code, message=error.message, details=details)


async def abort(context: aio.ServicerContext[RequestT, ResponseT], error: BaseException) -> NoReturn:
    """End the current call with the status for ``error``."""
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(from_exception(error))))
    raise AssertionError("abort_with_status returned")  # it always raises
