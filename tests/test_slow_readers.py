"""Readers that lag or stop: merged, bounded events; a stalled reader loses its generation, not its peers.

The slow clients open their channel with a 1 KiB HTTP/2 stream window and no BDP probe,
so the server's send waits after about a kilobyte of unread events (gRPC's own default
window is 64 KiB and grows). The simulation engine paces the output.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from service.config import ServeConfig, SimOptions
from service.generation import MAX_EVENT_TOKENS
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.streams import (
    Generation,
    collect,
    from_responses,
    read_generate,
    read_session,
    rest_of_generate,
    wait_until_idle,
)
from tests.stubs import ModelStub

SMALL_WINDOW = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]
STALL_TIMEOUT_S = 1.0
NEVER_ENDS = 8000
"""Tokens a stalled generation asks for: about 80 s at 30 ms steps, far past every wait here."""


def _request(request_id: str, max_tokens: int) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        request_id=request_id,
        text="Tell me about trains.",
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


def _retry_delay_ns(status: status_pb2.Status) -> int:
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details), "no google.rpc.RetryInfo"
    return retry.retry_delay.ToNanoseconds()


async def _read_until_error(
    call: aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse],
) -> tuple[list[generation_pb2.GenerateResponse], aio.AioRpcError]:
    """The events left on ``call`` and the error it ended with; fails if it ended OK."""
    events: list[generation_pb2.GenerateResponse] = []
    try:
        while isinstance(response := await call.read(), generation_pb2.GenerateResponse):
            events.append(response)
    except aio.AioRpcError as error:
        return events, error
    raise AssertionError(f"the call ended {await call.code()}, not with an error")


@pytest.fixture(scope="module")
def stalling_server() -> Iterator[LiveServer]:
    config = ServeConfig(port=0, engine="sim", sim=SimOptions(step_ms=30.0), stall_timeout_s=STALL_TIMEOUT_S)
    live, thread = serve_in_thread(config)
    yield live
    stop_live_server(live, thread)


async def test_a_generate_reader_that_stops_loses_its_slot_and_hears_why(stalling_server: LiveServer) -> None:
    address = stalling_server.address
    async with (
        aio.insecure_channel(address, options=SMALL_WINDOW) as slow,
        aio.insecure_channel(address) as ok,
    ):
        stalled = generation_pb2_grpc.GenerationServiceStub(slow).Generate(_request("stops", NEVER_ENDS))
        assert (await read_generate(stalled)).WhichOneof("event") == "started"
        # From here on the client reads nothing from `stalled`, but keeps the call open.
        normal = await collect(generation_pb2_grpc.GenerationServiceStub(ok).Generate(_request("reads", 400)))
        assert normal.reason == generation_pb2.FINISH_REASON_LENGTH and len(normal.token_ids) == 400
        # The engine slot, the id and the in-flight count are freed while the call is still open.
        await wait_until_idle(model_pb2_grpc.ModelServiceStub(ok))

        events, ended = await _read_until_error(stalled)
    assert ended.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(ended)  # type: ignore[arg-type]  # AioRpcError carries the same trailing metadata as grpc.Call
    assert status is not None and _retry_delay_ns(status) > 0
    assert events and all(e.WhichOneof("event") == "delta" for e in events)


async def test_a_session_reader_that_stops_gets_an_error_per_generation(stalling_server: LiveServer) -> None:
    address = stalling_server.address
    async with (
        aio.insecure_channel(address, options=SMALL_WINDOW) as slow,
        aio.insecure_channel(address) as ok,
    ):
        model = model_pb2_grpc.ModelServiceStub(ok)
        session = generation_pb2_grpc.GenerationServiceStub(slow).Session()
        for request_id in ("a", "b"):
            await session.write(generation_pb2.SessionRequest(start=_request(request_id, NEVER_ENDS)))
        results: dict[str, Generation] = defaultdict(Generation)
        while not (results["a"].started and results["b"].started):
            response = await read_session(session)
            results[response.request_id].add(response.WhichOneof("event") or "", response)
        # The client stops reading; both generations stall with it and free their slots.
        await wait_until_idle(model)

        while not (results["a"].error and results["b"].error):
            response = await read_session(session)
            results[response.request_id].add(response.WhichOneof("event") or "", response)
        for request_id in ("a", "b"):
            error = results[request_id].error
            assert error is not None and error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert _retry_delay_ns(error) > 0 and results[request_id].finished is None
        # The stream itself goes on: a reader that reads again can start again.
        await session.write(generation_pb2.SessionRequest(start=_request("c", 10)))
        await session.done_writing()
        while isinstance(last := await session.read(), generation_pb2.SessionResponse):
            results[last.request_id].add(last.WhichOneof("event") or "", last)
        assert await session.code() == grpc.StatusCode.OK
        assert (
            results["c"].reason == generation_pb2.FINISH_REASON_LENGTH and len(results["c"].token_ids) == 10
        )


async def _engine_done(model: ModelStub) -> None:
    """Wait until the engine holds no request (its output may still wait for a reader)."""
    async with asyncio.timeout(60):
        while True:
            load = await model.GetLoad(model_pb2.GetLoadRequest())
            if load.active_requests == 0 and load.waiting_requests == 0:
                return
            await asyncio.sleep(0.02)


async def test_a_lagging_reader_gets_all_tokens_in_fewer_bounded_events() -> None:
    # One token per engine step, so a reader that keeps up gets one event per token.
    live, thread = serve_in_thread(ServeConfig(port=0, engine="sim", sim=SimOptions(mode="throughput")))
    tokens = 3000
    try:
        async with (
            aio.insecure_channel(live.address) as ok,
            aio.insecure_channel(live.address, options=SMALL_WINDOW) as slow,
        ):
            model = model_pb2_grpc.ModelServiceStub(ok)
            # The same id streams the same tokens (the simulation's passage, from an offset set by the id).
            reference = await collect(
                generation_pb2_grpc.GenerationServiceStub(ok).Generate(_request("m", tokens))
            )
            call = generation_pb2_grpc.GenerationServiceStub(slow).Generate(_request("m", tokens))
            started = await read_generate(call)
            await _engine_done(model)  # the whole output was produced while the client read nothing
            lagged = from_responses([started, *await rest_of_generate(call)])
    finally:
        stop_live_server(live, thread)
    deltas = [len(d.token_ids) for d in lagged.deltas]
    assert lagged.reason == generation_pb2.FINISH_REASON_LENGTH
    assert lagged.token_ids == reference.token_ids and len(lagged.token_ids) == tokens
    assert lagged.text == reference.text
    assert len(deltas) < tokens / 4, "pending tokens were not merged"
    assert max(deltas) <= MAX_EVENT_TOKENS, "one event carried more than the per-event bound"
