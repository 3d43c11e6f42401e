"""OpenTelemetry traces that continue the caller's W3C ``traceparent``.

On with ``--otlp-endpoint`` (an OTLP/gRPC collector, ``http://host:4317``;
``https://`` for TLS): every RPC gets a SERVER span whose parent is the
caller's span from the ``traceparent`` / ``tracestate`` metadata (a new trace
when there is none or it does not parse), each generation a child span with the
request id, token counts, finish reason, timing and speculative statistics, and
under that three spans rebuilt from the generation's own clock when it ends:
``queue`` (submitted until its prompt's forward pass began), ``prefill`` (until
the first token) and ``decode`` (until the last). Spans are exported in batches
off the event loop by the SDK's exporter thread.

Off (the default), no span is ever made: ``service.interceptor`` starts none and the
servicers skip every tracing call. Log lines written while a span is current
carry its ``trace_id`` and ``span_id`` either way (``add_trace_ids``), so logs
join traces in the collector's backend.

The server keeps its own ``TracerProvider`` (the global one stays untouched), so
two servers in one process, or a test with an in-memory exporter, never mix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any, TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from engines.contract import FinishStats
from service.handlers import Context

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = ("traceparent", "tracestate")
MAX_CARRIED_BYTES = 512
"""traceparent is 55 bytes; tracestate may hold up to 32 list members (W3C): longer values are ignored."""


class Tracing:
    """A tracer of the server's own, and the processor that exports its spans."""

    def __init__(self, processor: SpanProcessor, *, service_version: str = "") -> None:
        attributes = {"service.name": "tokenwire"}
        if service_version:
            attributes["service.version"] = service_version
        self.provider = TracerProvider(resource=Resource.create(attributes))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("tokenwire")

    @classmethod
    def to_otlp(cls, endpoint: str, *, service_version: str = "") -> Tracing:
        """Batches exported over OTLP/gRPC to ``endpoint`` (``http://`` plaintext, ``https://`` TLS)."""
        # Imported only when used: the exporter pulls in its own gRPC client stack.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = endpoint.startswith("http://")
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=insecure)
        return cls(BatchSpanProcessor(exporter), service_version=service_version)

    def shutdown(self) -> None:
        """Export what is pending (bounded by the SDK's timeouts) and stop the exporter."""
        self.provider.shutdown()


def caller_context(metadata: Any) -> otel_context.Context:
    """The caller's trace context from gRPC metadata (an empty context when absent or malformed)."""
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        if key in _CARRIED and isinstance(value, str) and len(value) <= MAX_CARRIED_BYTES:
            carrier[key] = value
    return _PROPAGATOR.extract(carrier) if carrier else otel_context.Context()


def start_server_span(tracer: trace.Tracer, method: str, context: Context) -> trace.Span:
    """The SERVER span of a call of ``method`` (``/pkg.Service/Method``), the caller's span its parent."""
    service, _, name = method.lstrip("/").rpartition("/")
    return tracer.start_span(
        method.lstrip("/"),
        context=caller_context(context.invocation_metadata()),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )


def end_server_span(span: trace.Span, code: grpc.StatusCode) -> None:
    """End a call's span with the status ``code`` the call ended with."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


class GenerationSpan:
    """One generation's span (a child of the RPC's), and its queue/prefill/decode children at the end."""

    __slots__ = ("_arrival_ns", "_arrival_s", "_first_token_s", "_span", "_tracer")

    def __init__(self, tracer: trace.Tracer, request_id: str, prompt_tokens: int, arrival: float) -> None:
        self._tracer = tracer
        # Wall-clock nanoseconds of ``arrival`` (a time.monotonic() value): spans need epoch times.
        self._arrival_s = arrival
        self._arrival_ns = time.time_ns() - int((time.monotonic() - arrival) * 1e9)
        self._first_token_s: float | None = None
        self._span = tracer.start_span(
            "generation",
            start_time=self._arrival_ns,
            attributes={"tokenwire.request_id": request_id, "tokenwire.prompt_tokens": prompt_tokens},
        )

    def _at(self, monotonic_s: float) -> int:
        return self._arrival_ns + int((monotonic_s - self._arrival_s) * 1e9)

    def first_token(self, now: float) -> None:
        if self._first_token_s is None:
            self._first_token_s = now

    def finished(self, attributes: Mapping[str, str | int | float], stats: FinishStats, now: float) -> None:
        span = self._span
        span.set_attributes(dict(attributes))
        span.set_attributes(
            {
                "tokenwire.cached_prompt_tokens": stats.cached_prompt_tokens,
                "tokenwire.speculative.draft_tokens": stats.draft_tokens,
                "tokenwire.speculative.accepted_tokens": stats.accepted_draft_tokens,
                "tokenwire.speculative.decode_steps": stats.decode_steps,
                "tokenwire.queued_seconds": stats.queued_s,
            }
        )
        parent = trace.set_span_in_context(span)
        started = self._arrival_s + max(0.0, stats.queued_s)
        phases = [("queue", self._arrival_s, min(started, now))]
        if self._first_token_s is not None:
            phases.append(("prefill", min(started, self._first_token_s), self._first_token_s))
            phases.append(("decode", self._first_token_s, now))
        for name, begin, finish in phases:
            child = self._tracer.start_span(name, context=parent, start_time=self._at(begin))
            child.end(end_time=self._at(max(begin, finish)))
        span.end(end_time=self._at(now))

    def abandon(self, now: float) -> None:
        """The generation ended without a final event (the caller went away, an error)."""
        self._span.set_status(Status(StatusCode.ERROR, "ended without a final event"))
        self._span.end(end_time=self._at(now))


def add_trace_ids(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, when there is one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
    return event
