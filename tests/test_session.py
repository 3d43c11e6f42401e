"""The bidirectional Session stream: many generations, per-id cancel and errors."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import grpc
from tokenwire.v1 import generation_pb2, model_pb2

from tests.streams import (
    Generation,
    read_session,
    rest_of_session,
    room_left,
    violations_of,
    wait_until_idle,
)
from tests.stubs import GenerationStub, ModelStub


def start(request_id: str, text: str, max_tokens: int) -> generation_pb2.SessionRequest:
    return generation_pb2.SessionRequest(
        start=generation_pb2.GenerateRequest(
            request_id=request_id,
            text=text,
            sampling=generation_pb2.SamplingParams(temperature=0.0),
            stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
        )
    )


def cancel(request_id: str) -> generation_pb2.SessionRequest:
    return generation_pb2.SessionRequest(cancel=generation_pb2.SessionCancel(request_id=request_id))


async def test_three_generations_one_cancelled_mid_stream(
    generation: GenerationStub, model: ModelStub
) -> None:
    call = generation.Session()
    await call.write(start("a", "The history of Rome", 12))
    await call.write(start("b", "A recipe for bread", 200))
    await call.write(start("c", "The rules of chess", 16))
    results: dict[str, Generation] = defaultdict(Generation)
    cancel_sent = False
    while not all(results[rid].finished or results[rid].error for rid in "abc"):
        response = await read_session(call)
        event = response.WhichOneof("event")
        assert event is not None
        results[response.request_id].add(event, response)
        if response.request_id == "b" and event == "delta" and not cancel_sent:
            await call.write(cancel("b"))
            cancel_sent = True
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK

    assert results["a"].reason == generation_pb2.FINISH_REASON_LENGTH and len(results["a"].token_ids) == 12
    assert results["c"].reason == generation_pb2.FINISH_REASON_LENGTH and len(results["c"].token_ids) == 16
    assert results["b"].reason == generation_pb2.FINISH_REASON_CANCELLED
    assert 0 < len(results["b"].token_ids) < 200
    # Final events are sent after the engine freed the slots.
    load = await model.GetLoad(model_pb2.GetLoadRequest())
    assert (load.active_requests, load.waiting_requests, load.in_flight_requests) == (0, 0, 0)


async def test_batched_generations_match_solo_generations(generation: GenerationStub) -> None:
    """In-flight batching must not change what a greedy request produces."""

    async def solo(text: str) -> list[int]:
        call = generation.Session()
        await call.write(start("solo", text, 10))
        await call.done_writing()
        result = Generation()
        for response in await rest_of_session(call):
            result.add(response.WhichOneof("event") or "", response)
        return result.token_ids

    prompts = {"x": "The ocean is", "y": "In 1969, astronauts", "z": "def fibonacci(n):"}
    call = generation.Session()
    for rid, text in prompts.items():
        await call.write(start(rid, text, 10))
    await call.done_writing()
    results: dict[str, Generation] = defaultdict(Generation)
    for response in await rest_of_session(call):
        results[response.request_id].add(response.WhichOneof("event") or "", response)
    for rid, text in prompts.items():
        assert results[rid].token_ids == await solo(text), rid


async def test_bad_request_is_an_error_event_and_the_stream_goes_on(generation: GenerationStub) -> None:
    call = generation.Session()
    bad = generation_pb2.SessionRequest(
        start=generation_pb2.GenerateRequest(
            request_id="bad", text="hi", sampling=generation_pb2.SamplingParams(top_p=1.5)
        )
    )
    await call.write(bad)
    await call.write(generation_pb2.SessionRequest(start=generation_pb2.GenerateRequest(text="no id")))
    await call.write(start("good", "Hello", 4))
    await call.done_writing()
    results: dict[str, Generation] = defaultdict(Generation)
    for response in await rest_of_session(call):
        results[response.request_id].add(response.WhichOneof("event") or "", response)
    assert await call.code() == grpc.StatusCode.OK
    bad_error = results["bad"].error
    assert bad_error is not None and "sampling.top_p" in violations_of(bad_error)
    missing_id = results[""].error
    assert missing_id is not None and "request_id" in violations_of(missing_id)
    assert results["good"].reason == generation_pb2.FINISH_REASON_LENGTH


async def test_duplicate_id_is_rejected_for_that_id_only(generation: GenerationStub) -> None:
    call = generation.Session()
    await call.write(start("dup", "A long tale", 40))
    first = await read_session(call)
    assert first.request_id == "dup" and first.WhichOneof("event") == "started"
    await call.write(start("dup", "Another tale", 5))
    await call.done_writing()
    errors: list[generation_pb2.SessionResponse] = []
    finished: list[generation_pb2.SessionResponse] = []
    for response in await rest_of_session(call):
        match response.WhichOneof("event"):
            case "error":
                errors.append(response)
            case "finished":
                finished.append(response)
            case _:
                pass
    assert [e.error.code for e in errors] == [grpc.StatusCode.ALREADY_EXISTS.value[0]]
    assert len(finished) == 1 and finished[0].finished.usage.completion_tokens == 40


async def test_closing_the_stream_cancels_everything_on_it(
    generation: GenerationStub, model: ModelStub
) -> None:
    text = "An endless list of colours:"
    max_tokens = await room_left(model, text)  # both fit the KV budget at once (test server defaults)
    call = generation.Session()
    for rid in ("p", "q"):
        await call.write(start(rid, text, max_tokens))
    seen: set[str] = set()
    while seen != {"p", "q"}:
        response = await read_session(call)
        if response.WhichOneof("event") == "delta":
            seen.add(response.request_id)
    call.cancel()
    await wait_until_idle(model)


async def test_abort_reaches_a_session_generation(generation: GenerationStub, model: ModelStub) -> None:
    call = generation.Session()
    await call.write(start("session-abort", "Numbers:", 1000))
    while (await read_session(call)).WhichOneof("event") != "delta":
        pass
    abort = await generation.Abort(generation_pb2.AbortRequest(request_id="session-abort"))
    assert abort.cancelled
    await call.done_writing()
    events = await rest_of_session(call)
    assert events[-1].finished.reason == generation_pb2.FINISH_REASON_CANCELLED
    await asyncio.wait_for(wait_until_idle(model), 30)
