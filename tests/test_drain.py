"""The drain on stop and on SIGTERM: streams in flight finish, new work is told to retry elsewhere.

Both tests run the paced simulation engine (about 145 tokens/s per stream at 20 ms steps),
so that "finishes within the grace period" (300 tokens, about 2 s) and "outlives it"
(6,000 tokens, about 40 s) are far apart.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from service.config import ServeConfig, SimOptions
from service.registry import RequestRegistry
from tests.cli_process import ServeProcess
from tests.health import health_watch
from tests.live_servers import serve_in_thread
from tests.streams import Generation, from_responses, read_generate, read_session, rest_of_generate

SHORT = 300
LONG = 6000
SIM_STEP_MS = 20.0

GenerateCall = aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse]
SessionCall = aio.StreamStreamCall[generation_pb2.SessionRequest, generation_pb2.SessionResponse]


def _request(request_id: str, max_tokens: int) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        request_id=request_id,
        text="Tell me about trains.",
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


def _start(request_id: str, max_tokens: int) -> generation_pb2.SessionRequest:
    return generation_pb2.SessionRequest(start=_request(request_id, max_tokens))


def _has_retry_info(status: status_pb2.Status) -> bool:
    retry = error_details_pb2.RetryInfo()
    return any(detail.Unpack(retry) for detail in status.details) and retry.retry_delay.ToNanoseconds() > 0


def _refused_with_retry(error: aio.AioRpcError) -> bool:
    """UNAVAILABLE from the server itself (RetryInfo attached), not from a refused connection."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError carries the same trailing metadata as grpc.Call
    return error.code() == grpc.StatusCode.UNAVAILABLE and status is not None and _has_retry_info(status)


async def _first_delta(call: GenerateCall) -> list[generation_pb2.GenerateResponse]:
    events = [await read_generate(call)]
    while events[-1].WhichOneof("event") != "delta":
        events.append(await read_generate(call))
    return events


async def _ended_ok(call: GenerateCall, seen: list[generation_pb2.GenerateResponse]) -> Generation:
    result = from_responses([*seen, *await rest_of_generate(call)])
    assert await call.code() == grpc.StatusCode.OK, await call.details()
    return result


async def _session_until_deltas(call: SessionCall, ids: set[str]) -> dict[str, Generation]:
    results: dict[str, Generation] = defaultdict(Generation)
    while not all(results[i].deltas for i in ids):
        response = await read_session(call)
        results[response.request_id].add(response.WhichOneof("event") or "", response)
    return results


async def _session_rest(call: SessionCall, results: dict[str, Generation]) -> None:
    while isinstance(response := await call.read(), generation_pb2.SessionResponse):
        results[response.request_id].add(response.WhichOneof("event") or "", response)
    assert await call.code() == grpc.StatusCode.OK, await call.details()


async def _wait_not_serving(channel: aio.Channel) -> None:
    request = health_pb2.HealthCheckRequest(service="tokenwire.v1.GenerationService")
    async with asyncio.timeout(30):
        async for update in health_watch(channel)(request):
            if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                return
    raise AssertionError("the health watch ended before NOT_SERVING")


async def _new_work_is_refused_with_retry(address: str) -> None:
    """On a fresh connection (the port is still open): every kind of new work gets UNAVAILABLE + RetryInfo."""
    async with aio.insecure_channel(address) as fresh:
        generation = generation_pb2_grpc.GenerationServiceStub(fresh)
        with pytest.raises(aio.AioRpcError) as refused:
            await rest_of_generate(generation.Generate(_request("too-late", 5)))
        assert _refused_with_retry(refused.value), refused.value
        with pytest.raises(aio.AioRpcError) as refused:
            await model_pb2_grpc.ModelServiceStub(fresh).GetModelInfo(model_pb2.GetModelInfoRequest())
        assert _refused_with_retry(refused.value), refused.value
        session = generation.Session()
        with pytest.raises(aio.AioRpcError) as refused:
            await session.read()
        assert _refused_with_retry(refused.value), refused.value


def _check_cancelled_with_usage(result: Generation) -> None:
    assert result.reason == generation_pb2.FINISH_REASON_CANCELLED
    assert result.finished is not None
    usage = result.finished.usage
    assert 0 < usage.completion_tokens == len(result.token_ids) < LONG
    assert usage.prompt_tokens > 0


async def test_stop_lets_streams_finish_and_ends_the_rest_with_a_final_event() -> None:
    live, thread = serve_in_thread(ServeConfig(port=0, engine="sim", sim=SimOptions(step_ms=SIM_STEP_MS)))
    grace_s = 8.0
    try:
        async with aio.insecure_channel(live.address) as channel:
            stub = generation_pb2_grpc.GenerationServiceStub(channel)
            calls = {rid: stub.Generate(_request(rid, n)) for rid, n in [("short", SHORT), ("long", LONG)]}
            seen = {rid: await _first_delta(call) for rid, call in calls.items()}
            session = stub.Session()
            await session.write(_start("s-short", SHORT))
            await session.write(_start("s-long", LONG))
            in_session = await _session_until_deltas(session, {"s-short", "s-long"})

            stopping = asyncio.run_coroutine_threadsafe(live.server.stop(grace_s), live.loop)
            await _wait_not_serving(channel)
            # Precondition: all four generations were still running when the drain began.
            assert (
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(_in_flight(live.server.runtime.registry), live.loop)
                )
                == 4
            )
            await _new_work_is_refused_with_retry(live.address)
            await session.write(_start("s-late", SHORT))

            short = await _ended_ok(calls["short"], seen["short"])
            long = await _ended_ok(calls["long"], seen["long"])
            await _session_rest(session, in_session)
            await asyncio.wrap_future(stopping)

        assert short.reason == generation_pb2.FINISH_REASON_LENGTH and len(short.token_ids) == SHORT
        _check_cancelled_with_usage(long)
        assert in_session["s-short"].reason == generation_pb2.FINISH_REASON_LENGTH
        assert len(in_session["s-short"].token_ids) == SHORT
        _check_cancelled_with_usage(in_session["s-long"])
        late = in_session["s-late"].error
        assert (
            late is not None and late.code == grpc.StatusCode.UNAVAILABLE.value[0] and _has_retry_info(late)
        )
    finally:
        live.loop.call_soon_threadsafe(live.loop.stop)
        thread.join(timeout=60)


async def _in_flight(registry: RequestRegistry) -> int:
    """Run on the server's loop, which owns the registry."""
    return len(registry)


async def test_sigterm_drains_a_real_server() -> None:
    server = ServeProcess("--engine", "sim", "--sim-step-ms", str(SIM_STEP_MS), "--grace-period", "6", env={})
    try:
        port = await asyncio.to_thread(server.wait_for, "server_listening")
        await asyncio.to_thread(server.wait_for, "model_ready")
        address = f"127.0.0.1:{port['port']}"
        async with aio.insecure_channel(address) as channel:
            stub = generation_pb2_grpc.GenerationServiceStub(channel)
            requests = [("short", SHORT), ("long-1", LONG), ("long-2", LONG)]
            calls = {rid: stub.Generate(_request(rid, n)) for rid, n in requests}
            seen = {rid: await _first_delta(call) for rid, call in calls.items()}
            session = stub.Session()
            await session.write(_start("s-long", LONG))
            in_session = await _session_until_deltas(session, {"s-long"})

            os.kill(server.process.pid, signal.SIGTERM)
            await asyncio.to_thread(server.wait_for, "server_draining")
            await _new_work_is_refused_with_retry(address)

            results = {rid: await _ended_ok(call, seen[rid]) for rid, call in calls.items()}
            await _session_rest(session, in_session)

        assert results["short"].reason == generation_pb2.FINISH_REASON_LENGTH
        assert len(results["short"].token_ids) == SHORT
        _check_cancelled_with_usage(results["long-1"])
        _check_cancelled_with_usage(results["long-2"])
        _check_cancelled_with_usage(in_session["s-long"])
        await asyncio.to_thread(server.wait_for, "server_stopped")
        assert await asyncio.to_thread(server.process.wait, 60) == 0
    finally:
        server.process.kill()
