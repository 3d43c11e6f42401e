"""Counts every RPC by method and final status code (``tokenwire_rpcs_total``).

The outermost interceptor, so that calls refused by the ones inside it (a
missing token, undecodable bytes) are counted too. It wraps each method's
behaviour and reads the code the call ended with: the one an abort set, OK for
a normal end, CANCELLED when the caller went away, UNKNOWN for anything else.
A method this server does not have is counted once as ``method="unknown"``,
UNIMPLEMENTED: the label never takes a caller's string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc

from service.handlers import Call, Context, Stream, WrappingInterceptor, final_code, rewrap
from service.metrics import MetricsSink

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

UNKNOWN_METHOD = "unknown"


def _counted(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, sink: MetricsSink
) -> grpc.RpcMethodHandler[Any, Any]:
    def wrap_call(behaviour: Call, requests_stream: bool) -> Call:
        async def counted(request: Any, context: Context) -> Any:
            error: BaseException | None = None
            try:
                return await behaviour(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                sink.rpc(method, final_code(context, error).name)

        return counted

    def wrap_stream(behaviour: Stream, requests_stream: bool) -> Stream:
        async def counted(request: Any, context: Context) -> AsyncIterator[Any]:
            error: BaseException | None = None
            try:
                async for response in behaviour(request, context):
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                sink.rpc(method, final_code(context, error).name)

        return counted

    return rewrap(handler, wrap_call=wrap_call, wrap_stream=wrap_stream)


class MetricsInterceptor(WrappingInterceptor):
    """Counts each call of a known method once, with the status it ended with."""

    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink

    def wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        return _counted(handler, method, self._sink)

    def unknown_method(self) -> None:
        self._sink.rpc(UNKNOWN_METHOD, "UNIMPLEMENTED")
