"""Request bytes that do not decode end their call INVALID_ARGUMENT, not UNKNOWN.

grpc.aio decodes each request message before any servicer runs; a
``DecodeError`` there (bad UTF-8 in a string field, a truncated message) is
answered UNKNOWN with the parser's text. This interceptor gives every method a
deserializer that never raises: what does not decode becomes an ``Undecodable``
value, and the method's behaviour, wrapped, ends the call with INVALID_ARGUMENT
and a BadRequest violation instead (for a request stream: when that message is
reached, after the ones before it were handled).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from service.errors import FieldViolation, InvalidArgument, abort, clip
from service.handlers import Call, Context, Stream, WrappingInterceptor, rewrap

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request message that did not decode, and why."""

    reason: str

    def error(self) -> InvalidArgument:
        violation = FieldViolation("request", f"the message could not be decoded: {clip(self.reason, 200)}")
        return InvalidArgument([violation])


def _never_raising(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as error:
            return Undecodable(str(error))

    return decode


async def _checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        yield request


def _guard_call(behaviour: Call, requests_stream: bool) -> Call:
    if requests_stream:

        async def streamed(requests: AsyncIterator[Any], context: Context) -> Any:
            return await behaviour(_checked(requests, context), context)

        return streamed

    async def unary(request: Any, context: Context) -> Any:
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        return await behaviour(request, context)

    return unary


def _guard_stream(behaviour: Stream, requests_stream: bool) -> Stream:
    if requests_stream:

        async def streamed(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for response in behaviour(_checked(requests, context), context):
                yield response

        return streamed

    async def unary(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        async for response in behaviour(request, context):
            yield response

    return unary


def _guarded(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    return rewrap(
        handler,
        wrap_call=_guard_call,
        wrap_stream=_guard_stream,
        deserializer=_never_raising(handler.request_deserializer),
    )


class DecodeGuardInterceptor(WrappingInterceptor):
    """Wraps every method so that undecodable request bytes end the call INVALID_ARGUMENT."""

    def wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        return _guarded(handler)
