"""Generate and Abort through the real gRPC API, against the real embedded model."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2

from tests.live_servers import LiveServer
from tests.streams import (
    collect,
    from_responses,
    read_generate,
    rest_of_generate,
    room_left,
    wait_until_idle,
)
from tests.stubs import GenerationStub, ModelStub

FRANCE = generation_pb2.Chat(
    messages=[generation_pb2.ChatMessage(role="user", content="What is the capital of France?")]
)
GREEDY = generation_pb2.SamplingParams(temperature=0.0)


async def detokenize(model: ModelStub, ids: list[int]) -> str:
    return (await model.Detokenize(model_pb2.DetokenizeRequest(token_ids=ids))).text


async def test_chat_generation_streams_started_deltas_and_one_finished(
    generation: GenerationStub, model: ModelStub
) -> None:
    request = generation_pb2.GenerateRequest(chat=FRANCE, sampling=GREEDY)
    result = await collect(generation.Generate(request))

    assert "Paris" in result.text
    assert result.reason == generation_pb2.FINISH_REASON_END_OF_SEQUENCE
    assert result.text == await detokenize(model, result.token_ids)
    assert result.finished is not None and result.started is not None
    usage = result.finished.usage
    assert usage.completion_tokens == len(result.token_ids)
    prompt = await model.Tokenize(model_pb2.TokenizeRequest(chat=FRANCE))
    assert usage.prompt_tokens == result.started.prompt_tokens == len(prompt.token_ids)
    timing = result.finished.timing
    assert (
        timing.total.ToTimedelta() >= timing.time_to_first_token.ToTimedelta() > timing.queued.ToTimedelta()
    )


async def test_text_generation_assigns_an_id_and_respects_max_tokens(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        text="Once upon a time",
        stopping=generation_pb2.StoppingCriteria(max_tokens=7, ignore_eos=True),
    )
    responses = [r async for r in generation.Generate(request)]
    assert len(responses[0].request_id) == 32  # a server-assigned uuid4
    result = from_responses(responses)
    assert result.reason == generation_pb2.FINISH_REASON_LENGTH
    assert result.finished is not None
    assert len(result.token_ids) == 7 == result.finished.usage.completion_tokens
    assert result.text.strip()


async def test_stop_string_ends_generation_and_is_not_in_the_text(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        chat=FRANCE, sampling=GREEDY, stopping=generation_pb2.StoppingCriteria(stop=["Paris"])
    )
    result = await collect(generation.Generate(request))
    assert result.reason == generation_pb2.FINISH_REASON_STOP_STRING
    assert result.finished is not None and result.finished.stop_string == "Paris"
    assert "Paris" not in result.text
    assert result.text.endswith("capital of France is ")


async def test_stop_token_id_ends_generation(generation: GenerationStub, model: ModelStub) -> None:
    greedy = generation_pb2.GenerateRequest(chat=FRANCE, sampling=GREEDY)
    full = await collect(generation.Generate(greedy))
    stop_at = full.token_ids[3]
    request = generation_pb2.GenerateRequest(
        chat=FRANCE, sampling=GREEDY, stopping=generation_pb2.StoppingCriteria(stop_token_ids=[stop_at])
    )
    result = await collect(generation.Generate(request))
    assert result.reason == generation_pb2.FINISH_REASON_STOP_TOKEN
    assert result.finished is not None and result.finished.stop_token_id == stop_at
    assert result.token_ids == full.token_ids[: full.token_ids.index(stop_at)]


async def test_seeded_sampling_is_reproducible(generation: GenerationStub) -> None:
    def request(seed: int) -> generation_pb2.GenerateRequest:
        return generation_pb2.GenerateRequest(
            text="My favourite animal is",
            sampling=generation_pb2.SamplingParams(temperature=1.0, seed=seed),
            stopping=generation_pb2.StoppingCriteria(max_tokens=24, ignore_eos=True),
        )

    first, again, other = await asyncio.gather(
        collect(generation.Generate(request(1234))),
        collect(generation.Generate(request(1234))),
        collect(generation.Generate(request(999))),
    )
    assert first.token_ids == again.token_ids
    assert first.token_ids != other.token_ids


async def test_logprobs_with_top_candidates(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        chat=FRANCE,
        sampling=GREEDY,
        stopping=generation_pb2.StoppingCriteria(max_tokens=5),
        output=generation_pb2.OutputOptions(logprobs=True, top_logprobs=3),
    )
    result = await collect(generation.Generate(request))
    logprobs = [lp for d in result.deltas for lp in d.logprobs]
    assert [lp.token_id for lp in logprobs] == result.token_ids
    for item in logprobs:
        assert item.logprob <= 0.0
        assert len(item.top) == 3
        assert [t.logprob for t in item.top] == sorted((t.logprob for t in item.top), reverse=True)
        # Greedy: the sampled token is the most likely candidate.
        assert item.top[0].token_id == item.token_id


async def test_output_options_can_drop_token_ids_or_text(generation: GenerationStub) -> None:
    def request(output: generation_pb2.OutputOptions) -> generation_pb2.GenerateRequest:
        stopping = generation_pb2.StoppingCriteria(max_tokens=6)
        return generation_pb2.GenerateRequest(chat=FRANCE, sampling=GREEDY, stopping=stopping, output=output)

    text_only = await collect(generation.Generate(request(generation_pb2.OutputOptions(token_ids=False))))
    ids_only = await collect(generation.Generate(request(generation_pb2.OutputOptions(text=False))))
    assert text_only.token_ids == [] and text_only.text
    assert ids_only.text == "" and len(ids_only.token_ids) == 6


async def test_abort_from_a_second_channel_cancels_and_is_idempotent(
    live_server: LiveServer, generation: GenerationStub, model: ModelStub
) -> None:
    request = generation_pb2.GenerateRequest(
        request_id="abort-me",
        text="Count from one to one thousand:",
        stopping=generation_pb2.StoppingCriteria(max_tokens=500, ignore_eos=True),
    )
    call = generation.Generate(request)
    first = await read_generate(call)
    assert first.request_id == "abort-me" and first.WhichOneof("event") == "started"
    async with aio.insecure_channel(live_server.address) as other_channel:
        other = generation_pb2_grpc.GenerationServiceStub(other_channel)
        assert (await other.Abort(generation_pb2.AbortRequest(request_id="abort-me"))).cancelled
        events = await rest_of_generate(call)
        assert events[-1].WhichOneof("event") == "finished"
        assert events[-1].finished.reason == generation_pb2.FINISH_REASON_CANCELLED
        assert events[-1].finished.usage.completion_tokens < 500
        assert not (await other.Abort(generation_pb2.AbortRequest(request_id="abort-me"))).cancelled
        assert not (await other.Abort(generation_pb2.AbortRequest(request_id="never-existed"))).cancelled
    load = await model.GetLoad(model_pb2.GetLoadRequest())
    assert load.active_requests == 0 and load.in_flight_requests == 0


async def test_duplicate_request_id_in_flight_is_already_exists(generation: GenerationStub) -> None:
    long_request = generation_pb2.GenerateRequest(
        request_id="twice",
        text="Tell me a long story.",
        stopping=generation_pb2.StoppingCriteria(max_tokens=200, ignore_eos=True),
    )
    call = generation.Generate(long_request)
    assert (await read_generate(call)).WhichOneof("event") == "started"
    with pytest.raises(aio.AioRpcError) as caught:
        await collect(generation.Generate(long_request))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    call.cancel()


async def test_grpc_deadline_cancels_and_frees_the_slot(generation: GenerationStub, model: ModelStub) -> None:
    text = "Write a very long essay about rivers."
    request = generation_pb2.GenerateRequest(
        text=text,
        stopping=generation_pb2.StoppingCriteria(max_tokens=await room_left(model, text), ignore_eos=True),
    )
    with pytest.raises(aio.AioRpcError) as caught:
        await collect(generation.Generate(request, timeout=1.0))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_until_idle(model)


async def test_client_cancel_frees_the_slot(generation: GenerationStub, model: ModelStub) -> None:
    text = "Write a very long essay about mountains."
    request = generation_pb2.GenerateRequest(
        text=text,
        stopping=generation_pb2.StoppingCriteria(max_tokens=await room_left(model, text), ignore_eos=True),
    )
    call = generation.Generate(request)
    while (await read_generate(call)).WhichOneof("event") != "delta":
        pass
    assert (await model.GetLoad(model_pb2.GetLoadRequest())).active_requests >= 1
    call.cancel()
    await wait_until_idle(model)


async def test_request_timeout_keeps_partial_output(generation: GenerationStub, model: ModelStub) -> None:
    request = generation_pb2.GenerateRequest(
        text="Write a very long essay about forests.",
        stopping=generation_pb2.StoppingCriteria(max_tokens=1000, ignore_eos=True),
        timeout=duration_pb2.Duration(nanos=800_000_000),
    )
    result = await collect(generation.Generate(request))
    assert result.reason == generation_pb2.FINISH_REASON_DEADLINE
    assert 0 < len(result.token_ids) < 1000
    assert result.text == await detokenize(model, result.token_ids)
    load = await model.GetLoad(model_pb2.GetLoadRequest())
    assert load.active_requests == 0


@pytest.mark.parametrize(
    "prompt",
    [
        "Reply with three emoji that describe happiness.",
        "Write the Japanese word for thank you, in Japanese characters.",
    ],
)
async def test_multibyte_output_is_never_garbled(
    generation: GenerationStub, model: ModelStub, prompt: str
) -> None:
    chat = generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content=prompt)])
    request = generation_pb2.GenerateRequest(
        chat=chat, sampling=GREEDY, stopping=generation_pb2.StoppingCriteria(max_tokens=24)
    )
    result = await collect(generation.Generate(request))
    full = await detokenize(model, result.token_ids)
    assert any(ord(c) > 0x7FF for c in full), f"precondition: expected multi-byte output, got {full!r}"
    # Precondition: some character really is split across tokens.
    pieces = [await detokenize(model, [t]) for t in result.token_ids]
    assert any("\ufffd" in p for p in pieces), "no character was split across tokens"
    assert result.text == full
    # Only the very last delta may end in U+FFFD, when max_tokens cut a character.
    for delta in result.deltas[:-1]:
        assert "\ufffd" not in delta.text, delta.text
