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

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar, cast

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from service.errors import FieldViolation, InvalidArgument, abort, clip

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
Context: TypeAlias = aio.ServicerContext[Any, Any]
# grpc.aio calls these behaviours with aio contexts and async iterators; types-grpcio's
# RpcMethodHandler declares the sync ones, hence the casts where they are read.
UnaryUnary: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
UnaryStream: TypeAlias = Callable[[Any, Context], AsyncIterator[Any]]
StreamUnary: TypeAlias = Callable[[AsyncIterator[Any], Context], Awaitable[Any]]
StreamStream: TypeAlias = Callable[[AsyncIterator[Any], Context], AsyncIterator[Any]]


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


def _guarded(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    request_deserializer = _never_raising(handler.request_deserializer)
    serializer = handler.response_serializer

    async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                await abort(context, request.error())
            yield request

    if handler.unary_unary is not None:
        unary_unary = cast(UnaryUnary, handler.unary_unary)

        async def uu(request: Any, context: Context) -> Any:
            if isinstance(request, Undecodable):
                await abort(context, request.error())
            return await unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(uu, request_deserializer, serializer)
    if handler.unary_stream is not None:
        if not inspect.isasyncgenfunction(handler.unary_stream):
            # A coroutine that writes its responses with context.write (grpc_health's Watch).
            writer = cast(UnaryUnary, handler.unary_stream)

            async def us_writer(request: Any, context: Context) -> Any:
                if isinstance(request, Undecodable):
                    await abort(context, request.error())
                return await writer(request, context)

            return grpc.unary_stream_rpc_method_handler(us_writer, request_deserializer, serializer)
        unary_stream = cast(UnaryStream, handler.unary_stream)

        async def us(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await abort(context, request.error())
            async for response in unary_stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(us, request_deserializer, serializer)
    if handler.stream_unary is not None:
        stream_unary = cast(StreamUnary, handler.stream_unary)

        async def su(requests: AsyncIterator[Any], context: Context) -> Any:
            return await stream_unary(checked(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(su, request_deserializer, serializer)
    assert handler.stream_stream is not None
    if not inspect.isasyncgenfunction(handler.stream_stream):
        stream_writer = cast(StreamUnary, handler.stream_stream)

        async def ss_writer(requests: AsyncIterator[Any], context: Context) -> Any:
            return await stream_writer(checked(requests, context), context)

        return grpc.stream_stream_rpc_method_handler(ss_writer, request_deserializer, serializer)
    stream_stream = cast(StreamStream, handler.stream_stream)

    async def ss(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for response in stream_stream(checked(requests, context), context):
            yield response

    return grpc.stream_stream_rpc_method_handler(ss, request_deserializer, serializer)


class DecodeGuardInterceptor(aio.ServerInterceptor):
    """Wraps every method so that undecodable request bytes end the call INVALID_ARGUMENT."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else _guarded(handler)
