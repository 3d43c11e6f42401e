"""OpenTelemetry tracing of a live server: the caller's traceparent is the parent of the RPC's span,
each generation has its span and its queue/prefill/decode children, and spans reach a real
OTLP/gRPC receiver (the opentelemetry-proto service, served here on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import grpc
import pytest
from grpc import aio
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from service.engine_choice import build_engine
from service.server import TokenwireServer
from service.tracing import Tracing, add_trace_ids
from tests.client_examples import CLIENTS, java_example, run_example
from tests.conftest import server_config
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.stubs import GenerationStub

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
GENERATE = "tokenwire.v1.GenerationService/Generate"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def traced(exporter: InMemorySpanExporter) -> Iterator[LiveServer]:
    live, thread = serve_in_thread(server_config(), tracing=Tracing(SimpleSpanProcessor(exporter)))
    yield live
    stop_live_server(live, thread)


@pytest.fixture
async def stub(traced: LiveServer, exporter: InMemorySpanExporter) -> AsyncIterator[GenerationStub]:
    exporter.clear()
    async with aio.insecure_channel(traced.address) as channel:
        yield generation_pb2_grpc.GenerationServiceStub(channel)


def request(max_tokens: int = 5) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        text="Name three colours.",
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


async def generate(stub: GenerationStub, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    async for _ in stub.Generate(request(), metadata=metadata):
        pass


async def spans_once(exporter: InMemorySpanExporter, *names: str, each: int = 1) -> tuple[ReadableSpan, ...]:
    """The finished spans, once each of ``names`` is among them ``each`` times: the server ends a
    call's span just after its status went out, so a client can be a moment ahead of it."""
    deadline = time.monotonic() + 10
    while True:
        spans = exporter.get_finished_spans()
        if all(len(by_name(spans, n)) >= each for n in names) or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.02)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, spans
    return spans[0]


async def test_the_callers_traceparent_is_the_parent_of_the_server_span(
    stub: GenerationStub, exporter: InMemorySpanExporter
) -> None:
    await generate(stub, (("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque")))
    spans = await spans_once(exporter, GENERATE, "generation", "queue", "prefill", "decode")
    server = only(by_name(spans, GENERATE))
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert server.parent.is_remote
    assert server.context.trace_state.get("vendor") == "opaque"
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 0
    assert server.attributes["rpc.method"] == "Generate"

    generation = only(by_name(spans, "generation"))
    assert generation.parent is not None and generation.parent.span_id == server.context.span_id
    attributes = generation.attributes
    assert attributes is not None
    assert attributes["tokenwire.completion_tokens"] == 5
    assert attributes["tokenwire.finish_reason"] == "length"
    assert int(str(attributes["tokenwire.prompt_tokens"])) > 0
    assert str(attributes["tokenwire.request_id"])
    phases = [only(by_name(spans, name)) for name in ("queue", "prefill", "decode")]
    for phase in phases:
        assert phase.parent is not None and phase.parent.span_id == generation.context.span_id
        assert phase.start_time is not None and phase.end_time is not None
        assert phase.start_time <= phase.end_time
    assert generation.start_time is not None and generation.end_time is not None
    starts = [p.start_time or 0 for p in phases]
    assert generation.start_time <= starts[0] <= starts[1] <= starts[2] <= generation.end_time
    assert (phases[2].end_time or 0) <= generation.end_time


async def test_without_or_with_a_malformed_traceparent_a_new_trace_begins(
    stub: GenerationStub, exporter: InMemorySpanExporter
) -> None:
    await generate(stub)
    await generate(stub, (("traceparent", "00-not-a-trace-01"),))
    await generate(stub, (("traceparent", "00-" + "f" * 600),))
    servers = by_name(await spans_once(exporter, GENERATE, each=3), GENERATE)
    assert len(servers) == 3
    assert all(s.parent is None for s in servers)
    assert len({s.context.trace_id for s in servers}) == 3


async def test_a_refused_call_is_an_error_span(stub: GenerationStub, exporter: InMemorySpanExporter) -> None:
    bad = request()
    bad.sampling.temperature = -1.0
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in stub.Generate(bad, metadata=(("traceparent", TRACEPARENT),)):
            pass
    server = only(by_name(await spans_once(exporter, GENERATE), GENERATE))
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert not by_name(exporter.get_finished_spans(), "generation")


async def test_each_generation_of_a_session_is_a_child_of_the_session_span(
    stub: GenerationStub, exporter: InMemorySpanExporter
) -> None:
    call = stub.Session(metadata=(("traceparent", TRACEPARENT),))
    for name in ("a", "b"):
        start = request(3)
        start.request_id = name
        await call.write(generation_pb2.SessionRequest(start=start))
    await call.done_writing()
    async for _ in call:
        pass
    spans = await spans_once(exporter, "tokenwire.v1.GenerationService/Session")
    session = only(by_name(spans, "tokenwire.v1.GenerationService/Session"))
    generations = by_name(spans, "generation")
    assert sorted(str((g.attributes or {})["tokenwire.request_id"]) for g in generations) == ["a", "b"]
    assert all(g.parent is not None and g.parent.span_id == session.context.span_id for g in generations)
    assert all(format(g.context.trace_id, "032x") == TRACE_ID for g in generations)


def test_log_lines_carry_the_current_spans_ids(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter))
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}  # no span: nothing added
    with tracing.tracer.start_as_current_span("work") as span:
        event = add_trace_ids(None, "info", {"event": "x"})
    context = span.get_span_context()
    assert event["trace_id"] == format(context.trace_id, "032x")
    assert event["span_id"] == format(context.span_id, "016x")
    assert trace.get_current_span().get_span_context().is_valid is False


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_reach_an_otlp_receiver() -> None:
    receiver = Receiver()
    collector = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, collector)  # type: ignore[no-untyped-call]  # opentelemetry-proto ships no types for its gRPC module
    port = collector.add_insecure_port("127.0.0.1:0")
    collector.start()
    try:
        config = replace(server_config(), otlp_endpoint=f"http://127.0.0.1:{port}")
        live, thread = serve_in_thread(config)
        try:
            assert live.server.tracing is not None
            async with aio.insecure_channel(live.address) as channel:
                await generate(
                    generation_pb2_grpc.GenerationServiceStub(channel), (("traceparent", TRACEPARENT),)
                )
        finally:
            stop_live_server(live, thread)  # stopping exports what is pending
        with receiver.lock:
            exported = list(receiver.requests)
        spans = [
            (resource_spans.resource, span)
            for message in exported
            for resource_spans in message.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        names = {span.name for _, span in spans}
        assert {GENERATE, "generation", "queue", "prefill", "decode"} <= names
        server = next(span for _, span in spans if span.name == GENERATE)
        assert server.trace_id.hex() == TRACE_ID and server.parent_span_id.hex() == PARENT_ID
        resource = next(resource for resource, span in spans if span.name == GENERATE)
        service_names = [a.value.string_value for a in resource.attributes if a.key == "service.name"]
        assert service_names == ["tokenwire"]
    finally:
        collector.stop(0)


async def test_tracing_is_off_without_an_endpoint() -> None:
    server = TokenwireServer(server_config(), build_engine(replace(server_config(), engine="sim")))
    assert server.tracing is None and server.runtime.tracer is None


@pytest.mark.parametrize("client", ["python", "go", "typescript", "rust", "java"])
async def test_a_client_examples_traceparent_parents_the_server_span(
    client: str, traced: LiveServer, exporter: InMemorySpanExporter
) -> None:
    """Every client's stream example sends TOKENWIRE_TRACEPARENT as ``traceparent`` metadata (as
    built by its client's ci.sh, run as tests/test_client_*.py run them)."""
    exporter.clear()
    examples = {
        "python": lambda: [sys.executable, str(CLIENTS / "python" / "examples" / "stream.py")],
        "go": lambda: [str(CLIENTS / "go" / ".bin" / "stream")],
        "typescript": lambda: ["node", "dist/examples/stream.js"],
        "rust": lambda: [str(CLIENTS / "rust" / "target" / "debug" / "examples" / "stream")],
        "java": lambda: java_example("dev.tokenwire.examples.StreamExample"),
    }
    command = examples[client]()
    cwd = CLIENTS / "typescript" if client == "typescript" else None
    env = {"TOKENWIRE_TRACEPARENT": TRACEPARENT}
    output = await asyncio.to_thread(run_example, command, traced, cwd=cwd, env=env)
    assert "Paris" in output
    server = only(by_name(await spans_once(exporter, GENERATE), GENERATE))
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
