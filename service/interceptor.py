"""The one interceptor around every call: counted, traced, authorized, load-reported, decode-checked.

Each of these acts at a call's start or end, never at each message, so one
wrapper does them all: a streamed response passes through one generator on its
way out instead of one per concern (each extra one cost every message of every
stream a frame resumption). For each call, in this order:

1. Metrics (``--metrics-port``): ``tokenwire_rpcs_total`` counts every call of a
   known method by the status code it ended with, refused calls included. A
   method this server does not have is counted as ``method="unknown"``; a label
   never takes a caller's string.
2. Tracing (``--otlp-endpoint``): a SERVER span parented by the caller's
   ``traceparent`` (``service.tracing``).
3. Token auth (when configured, ``service.auth``): a refused call ends with its
   error before any servicer runs; its request bytes are never decoded and it
   learns nothing about the load.
4. ORCA: every tokenwire.v1 call that ends OK carries the load report trailer
   (``service.orca``); errors keep their own trailers.
5. Request bytes that do not decode end the call INVALID_ARGUMENT with a field
   violation, not UNKNOWN (``service.decoding``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry import trace

from service.auth import TokenAuth, refusing_handler
from service.decoding import Undecodable, checked_requests, never_raising
from service.errors import abort
from service.handlers import Call, Context, Stream, final_code, rewrap
from service.metrics import MetricsSink
from service.orca import ORCA_TRAILER, LoadFigures, orca_report
from service.tracing import end_server_span, start_server_span

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

UNKNOWN_METHOD = "unknown"
"""The ``method`` label of a call to a method this server does not have."""

ORCA_PREFIX = "/tokenwire.v1."
"""Calls of these services carry the ORCA trailer."""


@dataclass(frozen=True, slots=True)
class _Envelope:
    """What wraps the calls of one method (chosen once per call, from its method and metadata)."""

    label: str
    metrics: MetricsSink | None
    tracer: trace.Tracer | None
    figures: Callable[[], LoadFigures] | None
    """Set: the call reports its load in a trailer when it ends OK."""
    guard: bool
    """Requests are checked for ``Undecodable`` (the handler's deserializer never raises)."""

    def start(self, context: Context) -> trace.Span | None:
        return start_server_span(self.tracer, self.label, context) if self.tracer is not None else None

    def ok(self, context: Context) -> None:
        if self.figures is not None:
            context.set_trailing_metadata(((ORCA_TRAILER, orca_report(self.figures())),))

    def end(self, context: Context, span: trace.Span | None, error: BaseException | None) -> None:
        if self.metrics is None and span is None:
            return
        code = final_code(context, error)
        if self.metrics is not None:
            self.metrics.rpc(self.label, code.name)
        if span is not None:
            end_server_span(span, code)

    async def checked(self, request: Any, context: Context, requests_stream: bool) -> Any:
        if not self.guard:
            return request
        if requests_stream:
            return checked_requests(request, context)
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        return request

    def wrap_call(self, behaviour: Call, requests_stream: bool) -> Call:
        async def enveloped(request: Any, context: Context) -> Any:
            span = self.start(context)
            token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
            error: BaseException | None = None
            try:
                result = await behaviour(await self.checked(request, context, requests_stream), context)
                self.ok(context)
                return result
            except BaseException as raised:
                error = raised
                raise
            finally:
                if token is not None:
                    otel_context.detach(token)
                self.end(context, span, error)

        return enveloped

    def wrap_stream(self, behaviour: Stream, requests_stream: bool) -> Stream:
        async def enveloped(request: Any, context: Context) -> AsyncIterator[Any]:
            span = self.start(context)
            error: BaseException | None = None
            try:
                responses = behaviour(await self.checked(request, context, requests_stream), context)
                async with contextlib.aclosing(responses):  # type: ignore[type-var]  # an async generator
                    if span is None:
                        async for response in responses:
                            yield response
                    else:
                        async for response in _in_span(responses, span):
                            yield response
                self.ok(context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self.end(context, span, error)

        return enveloped


async def _in_span(responses: AsyncIterator[Any], span: trace.Span) -> AsyncIterator[Any]:
    """``responses``, each step run with ``span`` current.

    An async generator resumes in whatever context its consumer runs in: the
    span is attached around each step, never across a yield.
    """
    with_span = trace.set_span_in_context(span)
    while True:
        token = otel_context.attach(with_span)
        try:
            response = await anext(responses)
        except StopAsyncIteration:
            return
        finally:
            otel_context.detach(token)
        yield response


class CallInterceptor(aio.ServerInterceptor):
    """Wraps every call once with what tokenwire does around it (see the module's docstring)."""

    def __init__(
        self,
        *,
        metrics: MetricsSink | None,
        tracer: trace.Tracer | None,
        auth: TokenAuth | None,
        figures: Callable[[], LoadFigures],
    ) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._auth = auth
        self._figures = figures

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        handler = await continuation(details)
        method = details.method
        label = method if handler is not None else UNKNOWN_METHOD
        refusal = self._auth.refusal(details) if self._auth is not None else None
        if refusal is not None:
            envelope = _Envelope(label, self._metrics, self._tracer, None, guard=False)
            refused = refusing_handler(handler, refusal)
            return rewrap(refused, wrap_call=envelope.wrap_call, wrap_stream=envelope.wrap_stream)
        if handler is None:
            if self._metrics is not None:
                self._metrics.rpc(UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name)
            return None
        figures = self._figures if method.startswith(ORCA_PREFIX) else None
        envelope = _Envelope(label, self._metrics, self._tracer, figures, guard=True)
        return rewrap(
            handler,
            wrap_call=envelope.wrap_call,
            wrap_stream=envelope.wrap_stream,
            deserializer=never_raising(handler.request_deserializer),
        )
