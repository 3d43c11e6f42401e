"""Prometheus metrics of a live server (real model, real HTTP scrape), checked by promtool.

Each test scrapes before and after its own traffic and asserts the differences,
so the module's tests share one server without depending on their order.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.contract import SpeculationMethod
from service.config import NativeOptions
from tests.conftest import TEST_BATCH_SIZE, server_config
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.metrics_scrape import scrape_text
from tests.stubs import GenerationStub

ROOT = Path(__file__).resolve().parent.parent
GENERATE = "/tokenwire.v1.GenerationService/Generate"
SESSION = "/tokenwire.v1.GenerationService/Session"
COPY_PROMPT = "Repeat exactly: the quick brown fox jumps over the lazy dog. the quick brown fox jumps over"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def metered() -> Iterator[LiveServer]:
    ngram = NativeOptions(speculation=SpeculationMethod.NGRAM)
    live, thread = serve_in_thread(replace(server_config(), metrics_port=0, native=ngram))
    yield live
    stop_live_server(live, thread)


@pytest.fixture
async def stub(metered: LiveServer) -> AsyncIterator[GenerationStub]:
    async with aio.insecure_channel(metered.address) as channel:
        yield generation_pb2_grpc.GenerationServiceStub(channel)


async def scrape(live: LiveServer) -> Samples:
    text = await asyncio.to_thread(scrape_text, live)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def request(max_tokens: int, text: str = COPY_PROMPT) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        text=text,
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


async def drain(call: AsyncIterable[generation_pb2.GenerateResponse]) -> None:
    async for _ in call:
        pass


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)


async def until(live: LiveServer, check: str, predicate: object) -> Samples:
    """Scrape until ``predicate(samples)`` holds (server-side bookkeeping ends after the client's)."""
    assert callable(predicate)
    deadline = time.monotonic() + 20
    while True:
        samples = await scrape(live)
        if predicate(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {check}")
        await asyncio.sleep(0.05)


async def test_counts_and_histograms_follow_the_traffic(metered: LiveServer, stub: GenerationStub) -> None:
    before = await scrape(metered)
    finals: list[generation_pb2.Finished] = []
    events = 0
    for max_tokens in (6, 9):
        async for response in stub.Generate(request(max_tokens)):
            if response.HasField("finished"):
                finals.append(response.finished)
            elif response.HasField("delta") and response.delta.token_ids:
                events += 1
    session = stub.Session()
    for name, max_tokens in (("a", 4), ("b", 5)):
        start = request(max_tokens)
        start.request_id = name
        await session.write(generation_pb2.SessionRequest(start=start))
    await session.done_writing()
    async for message in session:
        if message.HasField("finished"):
            finals.append(message.finished)
        elif message.HasField("delta") and message.delta.token_ids:
            events += 1
    bad = request(4)
    bad.sampling.temperature = -1.0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await drain(stub.Generate(bad))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    after = await until(
        metered,
        "the Session call is counted",
        lambda s: (
            value(s, "tokenwire_rpcs_total", method=SESSION, code="OK")
            > value(before, "tokenwire_rpcs_total", method=SESSION, code="OK")
        ),
    )

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    completion = sum(f.usage.completion_tokens for f in finals)
    assert completion == 6 + 9 + 4 + 5
    assert delta("tokenwire_rpcs_total", method=GENERATE, code="OK") == 2
    assert delta("tokenwire_rpcs_total", method=GENERATE, code="INVALID_ARGUMENT") == 1
    assert delta("tokenwire_rpcs_total", method=SESSION, code="OK") == 1
    assert delta("tokenwire_generations_admitted_total", rpc="Generate") == 2
    assert delta("tokenwire_generations_admitted_total", rpc="Session") == 2
    rejected = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "tokenwire_requests_rejected_total" and ("rpc", "Generate") in k[1]
    )
    assert rejected == 1
    assert delta("tokenwire_generations_finished_total", reason="length") == 4
    assert delta("tokenwire_completion_tokens_total") == completion
    assert delta("tokenwire_prompt_tokens_total") == sum(f.usage.prompt_tokens for f in finals)
    assert delta("tokenwire_request_completion_tokens_sum") == completion
    assert delta("tokenwire_tokens_per_event_sum") == completion
    assert delta("tokenwire_tokens_per_event_count") == events
    for histogram in (
        "tokenwire_time_to_first_token_seconds",
        "tokenwire_request_duration_seconds",
        "tokenwire_queue_duration_seconds",
    ):
        assert delta(f"{histogram}_count") == 4, histogram
    # Every token after a generation's first is one per-token observation.
    assert delta("tokenwire_time_per_output_token_seconds_count") == completion - 4
    assert delta("tokenwire_inter_event_latency_seconds_count") == events - 4
    # Speculation: the counters equal what the final events reported, under the method used.
    drafted = sum(f.speculative.draft_tokens for f in finals)
    assert drafted > 0  # the prompt repeats itself: prompt lookup drafts
    assert delta("tokenwire_speculative_draft_tokens_total", method="ngram") == drafted
    assert delta("tokenwire_speculative_accepted_tokens_total", method="ngram") == sum(
        f.speculative.accepted_tokens for f in finals
    )
    assert delta("tokenwire_decode_steps_total") == sum(f.speculative.decode_steps for f in finals)


async def test_gauges_describe_the_engine_and_idle_returns_to_zero(
    metered: LiveServer, stub: GenerationStub
) -> None:
    call: grpc.aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse]
    call = stub.Generate(request(200, "Tell me a long story about a lighthouse."))
    async for response in call:
        if response.HasField("delta"):
            break
    busy = await until(
        metered, "a generation in flight", lambda s: value(s, "tokenwire_generations_in_flight") == 1
    )
    assert value(busy, "tokenwire_engine_active_slots") == 1
    assert value(busy, "tokenwire_kv_cache_used_bytes") > 0
    call.cancel()
    idle = await until(
        metered,
        "idle again",
        lambda s: (
            value(s, "tokenwire_generations_in_flight") == 0
            and value(s, "tokenwire_engine_active_slots") == 0
            and value(s, "tokenwire_rpcs_total", method=GENERATE, code="CANCELLED")
            > value(busy, "tokenwire_rpcs_total", method=GENERATE, code="CANCELLED")
        ),
    )
    assert value(idle, "tokenwire_kv_cache_used_bytes") == 0
    assert value(idle, "tokenwire_kv_cache_capacity_bytes") > 0
    assert value(idle, "tokenwire_engine_slots") == TEST_BATCH_SIZE
    assert value(idle, "tokenwire_engine_queue_depth") == 0
    assert value(idle, "tokenwire_serving") == 1
    assert value(idle, "process_cpu_seconds_total") > 0  # the default collectors


async def test_an_unknown_method_is_counted_without_its_name(metered: LiveServer) -> None:
    before = await scrape(metered)
    async with aio.insecure_channel(metered.address) as channel:
        nothing: aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/tokenwire.v1.Nothing/Here" + "x" * 200
        )
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await nothing(b"")
    assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED
    after = await scrape(metered)
    assert value(after, "tokenwire_rpcs_total", method="unknown", code="UNIMPLEMENTED") == (
        value(before, "tokenwire_rpcs_total", method="unknown", code="UNIMPLEMENTED") + 1
    )
    assert not any("Nothing" in str(labels) for _, labels in after)


def promtool() -> str:
    found = ROOT / ".deps" / "bin" / "promtool"
    if found.exists():
        return str(found)
    on_path = shutil.which("promtool")
    assert on_path is not None, "promtool is missing: `make .deps/bin/promtool` (make test does it)"
    return on_path


async def test_the_exposition_passes_promtool(metered: LiveServer, stub: GenerationStub) -> None:
    async for _ in stub.Generate(request(3)):
        pass
    text = await asyncio.to_thread(scrape_text, metered)
    checked = await asyncio.to_thread(check_metrics, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr
    # And it would catch a bad name.
    bad = await asyncio.to_thread(
        check_metrics, "# HELP x_count_things things\n# TYPE x_count_things counter\nx_count_things 1\n"
    )
    assert bad.returncode != 0


async def test_every_metric_the_dashboard_queries_is_exposed(
    metered: LiveServer, stub: GenerationStub
) -> None:
    # Labelled series exist once something was counted: a drafting generation and a refusal.
    await drain(stub.Generate(request(6)))
    bad = request(4)
    bad.sampling.temperature = -1.0
    with pytest.raises(grpc.aio.AioRpcError):
        await drain(stub.Generate(bad))
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tokenwire.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\btokenwire_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 10
    exposed = {name for name, _ in await scrape(metered)}
    assert queried <= exposed, queried - exposed
