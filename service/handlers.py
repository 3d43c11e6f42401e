"""Rebuilding a grpc.aio method handler with its behaviour wrapped (``service.interceptor``).

A handler holds one of four behaviours (unary or streaming request, unary or
streaming response). grpc.aio tells how to drive a streaming-response behaviour
by its function type: an async generator yields its responses, a coroutine
writes them with ``context.write`` (grpc_health's Watch is one). ``rewrap``
keeps every kind as it was and hands each behaviour to one of two wrappers: one
for behaviours awaited once (``wrap_call``), one for async generators
(``wrap_stream``); each is told whether requests arrive as a stream.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
from grpc import aio

Context: TypeAlias = aio.ServicerContext[Any, Any]
# grpc.aio calls these behaviours with aio contexts and async iterators; types-grpcio's
# RpcMethodHandler declares the sync ones, hence the casts where they are read.
Call: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
"""A behaviour awaited once: unary response, or responses written with ``context.write``."""
Stream: TypeAlias = Callable[[Any, Context], AsyncIterator[Any]]
"""An async-generator behaviour: streamed responses."""
Deserializer: TypeAlias = Callable[[bytes], Any] | None


def rewrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    *,
    wrap_call: Callable[[Call, bool], Call],
    wrap_stream: Callable[[Stream, bool], Stream],
    deserializer: Deserializer = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with its behaviour wrapped (and ``deserializer`` in place of its own, if given)."""
    decode = deserializer if deserializer is not None else handler.request_deserializer
    encode = handler.response_serializer
    if handler.unary_unary is not None:
        call = wrap_call(cast(Call, handler.unary_unary), False)
        return grpc.unary_unary_rpc_method_handler(call, decode, encode)
    if handler.stream_unary is not None:
        call = wrap_call(cast(Call, handler.stream_unary), True)
        return grpc.stream_unary_rpc_method_handler(call, decode, encode)
    if handler.unary_stream is not None:
        behaviour: object = handler.unary_stream
        build = grpc.unary_stream_rpc_method_handler
        requests_stream = False
    else:
        assert handler.stream_stream is not None
        behaviour = handler.stream_stream
        build = grpc.stream_stream_rpc_method_handler
        requests_stream = True
    if inspect.isasyncgenfunction(behaviour):
        return build(wrap_stream(cast(Stream, behaviour), requests_stream), decode, encode)
    return build(wrap_call(cast(Call, behaviour), requests_stream), decode, encode)


def final_code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: an abort's code, OK for a normal end, CANCELLED when the
    caller went away, UNKNOWN for anything else."""
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    if error is not None and not isinstance(error, aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    code = context.code()
    if code is None:
        return grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    for status in grpc.StatusCode:  # grpc.aio may keep the integer value of a code
        if status.value[0] == code:
            return status
    return grpc.StatusCode.UNKNOWN
