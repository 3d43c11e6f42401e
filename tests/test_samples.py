"""Several samples per request (GenerateRequest.n) through the real gRPC API, against the real model."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc import aio
from tokenwire.v1 import generation_pb2, model_pb2

from tests.streams import bad_request
from tests.stubs import GenerationStub, ModelStub

PROMPT = generation_pb2.Chat(
    messages=[
        generation_pb2.ChatMessage(
            role="system",
            content=(
                "You are a friendly assistant who writes short, vivid answers about animals and nature. "
                "Keep every answer to a single sentence, use plain words, and never use lists or headings."
            ),
        ),
        generation_pb2.ChatMessage(role="user", content="Write one sentence about a fox in the snow."),
    ]
)


@dataclass
class Sampled:
    started: generation_pb2.Started | None = None
    text: dict[int, str] = field(default_factory=lambda: defaultdict(str))
    token_ids: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    finished: dict[int, generation_pb2.Finished] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


async def read(generation: GenerationStub, request: generation_pb2.GenerateRequest) -> Sampled:
    result = Sampled()
    async for response in generation.Generate(request):
        kind = response.WhichOneof("event")
        result.order.append(kind or "")
        if kind == "started":
            result.started = response.started
        elif kind == "delta":
            index = response.delta.sample_index
            assert index not in result.finished, "a delta after its sample's finished event"
            result.text[index] += response.delta.text
            result.token_ids[index].extend(response.delta.token_ids)
        elif kind == "finished":
            assert response.finished.sample_index not in result.finished, "two finished events for a sample"
            result.finished[response.finished.sample_index] = response.finished
    return result


def _request(n: int, **sampling: float | int) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        chat=PROMPT,
        n=n,
        sampling=generation_pb2.SamplingParams(**sampling),  # type: ignore[arg-type]  # float/int fields
        stopping=generation_pb2.StoppingCriteria(max_tokens=24),
    )


async def test_n_samples_each_end_once_and_count_the_prompt_once(generation: GenerationStub) -> None:
    result = await read(generation, _request(3, temperature=1.0, seed=11))
    assert result.order[0] == "started" and result.order.count("started") == 1
    assert set(result.finished) == {0, 1, 2}
    assert result.order[-1] == "finished"
    assert result.started is not None
    prompt_tokens = [f.usage.prompt_tokens for f in result.finished.values()]
    assert sum(prompt_tokens) == result.started.prompt_tokens  # counted once
    assert sorted(prompt_tokens) == [0, 0, result.started.prompt_tokens]
    for index, finished in result.finished.items():
        assert finished.usage.completion_tokens == len(result.token_ids[index])
    assert len({tuple(ids) for ids in result.token_ids.values()}) == 3, "sampled answers should differ"


async def test_each_sample_is_reproducible_with_its_seed(generation: GenerationStub) -> None:
    """The same request gives the same samples; another seed, other samples. (Sample i draws with
    seed + i; its tokens match a lone request with that seed only while the batch matches too: the
    engine's logits move by rounding with the batch's size, as for any seeded request.)"""
    together = await read(generation, _request(3, temperature=1.0, seed=40))
    again = await read(generation, _request(3, temperature=1.0, seed=40))
    assert together.token_ids == again.token_ids
    other = await read(generation, _request(3, temperature=1.0, seed=41))
    assert other.token_ids != together.token_ids


async def test_the_samples_share_the_prompts_prefill(generation: GenerationStub) -> None:
    """Sample 0 runs the prompt; the others start once it has, and find it in the prefix cache."""
    fresh = generation_pb2.Chat()
    fresh.CopyFrom(PROMPT)
    fresh.messages[0].content = f"Session {uuid.uuid4().hex}. " + fresh.messages[0].content  # never cached
    request = _request(4, temperature=1.0, seed=3)
    request.chat.CopyFrom(fresh)
    result = await read(generation, request)
    prompt_tokens = result.started.prompt_tokens if result.started is not None else 0
    assert prompt_tokens >= 48
    cached = {i: f.usage.cached_prompt_tokens for i, f in result.finished.items()}
    assert cached[0] == 0
    # Whole cache blocks (at most 32 tokens each) are shared; only the prompt's tail is run again.
    assert all(prompt_tokens - 32 <= cached[i] < prompt_tokens for i in (1, 2, 3)), (prompt_tokens, cached)


async def test_greedy_n_and_n_beyond_the_limit_are_refused(
    generation: GenerationStub, model: ModelStub
) -> None:
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    assert info.max_samples == 16
    for request, needle in (
        (_request(2, temperature=0.0), "temperature 0"),
        (_request(17), "[1, 16]"),
    ):
        with pytest.raises(aio.AioRpcError) as caught:
            await read(generation, request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in bad_request(caught.value)["n"]


async def test_abort_ends_every_sample_cancelled(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        request_id="samples-abort",
        chat=PROMPT,
        n=3,
        stopping=generation_pb2.StoppingCriteria(max_tokens=400, ignore_eos=True),
    )
    finished: dict[int, generation_pb2.Finished] = {}
    deltas = 0
    async for response in generation.Generate(request):
        if response.WhichOneof("event") == "delta":
            deltas += 1
            if deltas == 6:
                await generation.Abort(generation_pb2.AbortRequest(request_id="samples-abort"))
        elif response.WhichOneof("event") == "finished":
            finished[response.finished.sample_index] = response.finished
    assert set(finished) == {0, 1, 2}
    for item in finished.values():
        assert item.reason == generation_pb2.FINISH_REASON_CANCELLED
        assert item.usage.completion_tokens < 400


async def test_the_timeout_ends_every_sample(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        chat=PROMPT,
        n=2,
        timeout=duration_pb2.Duration(nanos=300_000_000),
        stopping=generation_pb2.StoppingCriteria(max_tokens=400, ignore_eos=True),
    )
    result = await read(generation, request)
    assert {i: f.reason for i, f in result.finished.items()} == {
        0: generation_pb2.FINISH_REASON_DEADLINE,
        1: generation_pb2.FINISH_REASON_DEADLINE,
    }


async def test_a_stop_string_ends_only_its_own_sample(generation: GenerationStub) -> None:
    """Sample i stops at a string only its own answer can contain (its forced first token)."""
    result = await read(
        generation,
        generation_pb2.GenerateRequest(
            chat=PROMPT,
            n=2,
            sampling=generation_pb2.SamplingParams(temperature=1.0, seed=5),
            stopping=generation_pb2.StoppingCriteria(max_tokens=24, ignore_eos=True, stop=["fox"]),
        ),
    )
    reasons = {i: f.reason for i, f in result.finished.items()}
    for index, reason in reasons.items():
        if "fox" in (result.text[index] + "fox") and reason == generation_pb2.FINISH_REASON_STOP_STRING:
            assert result.finished[index].stop_string == "fox"
        else:
            assert reason == generation_pb2.FINISH_REASON_LENGTH
            assert result.finished[index].usage.completion_tokens == 24


async def test_samples_in_a_session_carry_their_id_and_index(generation: GenerationStub) -> None:
    start = generation_pb2.GenerateRequest(
        request_id="s-n",
        chat=PROMPT,
        n=2,
        sampling=generation_pb2.SamplingParams(temperature=1.0, seed=9),
        stopping=generation_pb2.StoppingCriteria(max_tokens=8),
    )
    finished: set[int] = set()
    async for response in generation.Session(iter([generation_pb2.SessionRequest(start=start)])):
        assert response.request_id == "s-n"
        if response.WhichOneof("event") == "finished":
            finished.add(response.finished.sample_index)
    assert finished == {0, 1}


async def test_concurrent_sampled_requests_do_not_mix(generation: GenerationStub) -> None:
    results = await asyncio.gather(*(read(generation, _request(2, temperature=1.0, seed=s)) for s in (1, 2)))
    for result in results:
        assert set(result.finished) == {0, 1}
