"""Load reports of a live server: the ORCA trailer on each call, ORCA's out-of-band stream,
and WatchLoad / GetLoad (the same figures in our own API)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import subprocess
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc import aio
from tokenwire.v1 import generation_pb2, model_pb2

from service.orca import ORCA_METHOD, ORCA_SERVICE, ORCA_TRAILER
from service.orca_messages import OrcaLoadReport, OrcaLoadReportRequest
from tests.conftest import TEST_BATCH_SIZE, server_config
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.stubs import GenerationStub, ModelStub

OOB = f"/{ORCA_SERVICE}/{ORCA_METHOD}"
ROOT = Path(__file__).resolve().parent.parent


def request(max_tokens: int) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        text="Tell me about lighthouses.",
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


def oob_request(interval_s: float) -> bytes:
    message = OrcaLoadReportRequest()
    message.report_interval.FromTimedelta(datetime.timedelta(seconds=interval_s))
    encoded: bytes = message.SerializeToString()
    return encoded


def oob_stream(channel: aio.Channel, payload: bytes) -> aio.UnaryStreamCall[bytes, bytes]:
    method: aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(OOB)
    return method(payload)


def grpcurl_trailer(address: str, method: str, body: str) -> Any:
    """The OrcaLoadReport in the trailers grpcurl receives (gRPC's Python client keeps this one
    trailer to its own load balancing and never shows it to the application), or None."""
    grpcurl = ROOT / ".venv" / "bin" / "grpcurl"
    command = [
        str(grpcurl) if grpcurl.exists() else "grpcurl",
        "-plaintext",
        "-v",
        "-d",
        body,
        address,
        method,
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False).stdout
    trailers = output.partition("Response trailers received:")[2]
    for line in trailers.splitlines():
        key, _, value = line.partition(": ")
        if key == ORCA_TRAILER:
            report = OrcaLoadReport()
            report.ParseFromString(base64.b64decode(value))
            return report
    return None


async def test_every_call_that_ends_ok_carries_an_orca_report(live_server: LiveServer) -> None:
    address = live_server.address
    body = '{"text": "Tell me about lighthouses.", "stopping": {"max_tokens": 4}}'
    report = await asyncio.to_thread(
        grpcurl_trailer, address, "tokenwire.v1.GenerationService/Generate", body
    )
    assert report is not None
    assert set(report.named_metrics) == {"queue_depth", "active_slots", "in_flight"}
    assert set(report.utilization) == {"kv_cache", "slots"}
    assert 0.0 <= report.cpu_utilization <= 1.0
    assert 0.0 <= report.application_utilization <= 1.0
    assert report.rps_fractional > 0  # this very generation was admitted seconds ago

    info = await asyncio.to_thread(grpcurl_trailer, address, "tokenwire.v1.ModelService/GetModelInfo", "{}")
    assert info is not None
    bad = '{"text": "x", "sampling": {"temperature": -1}}'
    refused = await asyncio.to_thread(
        grpcurl_trailer, address, "tokenwire.v1.GenerationService/Generate", bad
    )
    assert refused is None  # errors keep their own trailers


async def test_the_out_of_band_stream_follows_the_load(
    live_server: LiveServer, generation: GenerationStub
) -> None:
    async with aio.insecure_channel(live_server.address) as channel:
        stream = oob_stream(channel, oob_request(0.1))
        reports = aiter(stream)

        async def next_report() -> Any:
            report = OrcaLoadReport()
            report.ParseFromString(await anext(reports))
            return report

        idle = await next_report()
        assert idle.named_metrics["in_flight"] == 0
        busy_call = generation.Generate(request(300))
        async for _ in busy_call:
            break  # generating now
        for _ in range(200):
            busy = await next_report()
            if busy.named_metrics["in_flight"] == 1:
                break
        assert busy.named_metrics["in_flight"] == 1 and busy.named_metrics["active_slots"] == 1
        assert busy.utilization["slots"] == pytest.approx(1 / TEST_BATCH_SIZE)
        assert busy.utilization["kv_cache"] > 0
        busy_call.cancel()
        stream.cancel()

        garbage = oob_stream(channel, b"\xff\xff\xff")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in garbage:
                pass
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_watch_load_and_get_load_report_the_same_figures(
    model: ModelStub, generation: GenerationStub
) -> None:
    load = await model.GetLoad(model_pb2.GetLoadRequest())
    assert load.slots == TEST_BATCH_SIZE
    assert 0.0 <= load.cpu_utilization <= 1.0 and 0.0 <= load.kv_cache_utilization <= 1.0

    watch = model.WatchLoad(model_pb2.WatchLoadRequest(interval=Duration(nanos=100_000_000)))
    messages = aiter(watch)
    first = await anext(messages)
    assert first.load.slots == TEST_BATCH_SIZE
    busy_call = generation.Generate(request(300))
    async for _ in busy_call:
        break
    for _ in range(200):
        seen = (await anext(messages)).load
        if seen.in_flight_requests == 1:
            break
    assert seen.in_flight_requests == 1 and seen.active_requests == 1 and seen.kv_cache_utilization > 0
    assert seen.requests_per_second > 0
    busy_call.cancel()
    watch.cancel()

    bad = model.WatchLoad(model_pb2.WatchLoadRequest(interval=Duration(seconds=-1)))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in bad:
            pass
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def sim_channel() -> AsyncIterator[tuple[LiveServer, threading.Thread, aio.Channel]]:
    live, thread = serve_in_thread(replace(server_config(), engine="sim"))
    try:
        async with aio.insecure_channel(live.address) as channel:
            yield live, thread, channel
    finally:
        if thread.is_alive():
            stop_live_server(live, thread)


async def test_load_streams_end_when_the_server_drains(
    sim_channel: tuple[LiveServer, threading.Thread, aio.Channel],
) -> None:
    live, thread, channel = sim_channel
    from tokenwire.v1 import model_pb2_grpc

    watch = model_pb2_grpc.ModelServiceStub(channel).WatchLoad(
        model_pb2.WatchLoadRequest(interval=Duration(seconds=30))
    )
    oob = oob_stream(channel, oob_request(30))
    await anext(aiter(watch))
    await anext(aiter(oob))
    stopping = asyncio.get_running_loop().run_in_executor(None, stop_live_server, live, thread)
    # Both end (OK) long before their 30 s interval: the drain closes them.
    assert [m async for m in watch] == []
    assert [m async for m in oob] == []
    assert await watch.code() is grpc.StatusCode.OK and await oob.code() is grpc.StatusCode.OK
    await stopping
