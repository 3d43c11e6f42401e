"""NativeEngine through the engine contract (no gRPC): batching, cancellation, stopping, sampling."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest

from engines.contract import (
    EngineError,
    EngineOverloaded,
    EngineRequest,
    FinishReason,
    SamplingParams,
)
from engines.native.engine import NativeEngine, NativeEngineConfig
from tests.engine_runs import prompt_request, tokens_and_last

MAX_BATCH = 4
MAX_WAITING = 2


@pytest.fixture(scope="module")
def engine() -> Iterator[NativeEngine]:
    # The engine is not tied to an event loop: each test drives it from its own loop.
    engine = NativeEngine(
        NativeEngineConfig(max_batch_size=MAX_BATCH, max_waiting=MAX_WAITING, context_length=1024)
    )
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.shutdown())


# This module's requests: tokenized chat prompts (or raw text, chat=False), 8 tokens unless a
# test says otherwise; _drain reads one to its end: (its tokens, its last output).
_request = functools.partial(prompt_request, max_tokens=8)
_drain = tokens_and_last


async def _barrier(engine: NativeEngine) -> None:
    """Wait until the worker has finished one more request: every earlier cancel has been applied."""
    await _drain(engine.generate(_request(engine, "ok", max_tokens=1)))


async def test_in_flight_batching_matches_solo_runs(engine: NativeEngine) -> None:
    first = _request(engine, "What is the capital of France?", max_tokens=16, ignore_eos=True)
    second = _request(engine, "Write a haiku about the sea.", max_tokens=16, ignore_eos=True)
    solo_first, _ = await _drain(engine.generate(first))
    solo_second, _ = await _drain(engine.generate(second))

    stream = engine.generate(first)
    head = await anext(stream)  # the first request is decoding before the second arrives
    together_second, together_first = await asyncio.gather(_drain(engine.generate(second)), _drain(stream))
    # Batched rows go through the same kernels as a single row (see model.linear), and on
    # these prompts the greedy tokens agree exactly; float noise could only flip a near-tie.
    assert [*head.token_ids, *together_first[0]] == solo_first
    assert together_second[0] == solo_second
    assert together_first[1].finish_reason is FinishReason.LENGTH


async def test_max_tokens_gives_length_with_exactly_that_many(engine: NativeEngine) -> None:
    tokens, last = await _drain(
        engine.generate(_request(engine, "Count to ten.", max_tokens=5, ignore_eos=True))
    )
    assert len(tokens) == 5
    assert last.finish_reason is FinishReason.LENGTH
    assert last.stats is not None and last.stats.decode_steps == 5 and last.stats.queued_s >= 0


async def test_eos_ends_the_request_without_the_eos_token(engine: NativeEngine) -> None:
    tokens, last = await _drain(
        engine.generate(_request(engine, "What is the capital of France?", max_tokens=40))
    )
    assert last.finish_reason is FinishReason.END_OF_SEQUENCE
    assert engine.tokenizer.decode(tokens) == "The capital of France is Paris."
    assert not set(tokens) & engine.tokenizer.eos_token_ids


async def test_min_tokens_suppresses_eos(engine: NativeEngine) -> None:
    request = _request(engine, "What is the capital of France?", max_tokens=14, min_tokens=12)
    tokens, _ = await _drain(engine.generate(request))
    assert len(tokens) >= 12
    assert not set(tokens[:12]) & engine.tokenizer.eos_token_ids


async def test_stop_token_ids_end_with_stop_token(engine: NativeEngine) -> None:
    reference, _ = await _drain(engine.generate(_request(engine, "Tell me about cats.", max_tokens=12)))
    index = next(i for i, token in enumerate(reference) if i >= 2 and token not in reference[:i])
    request = _request(engine, "Tell me about cats.", max_tokens=12, stop_token_ids=(reference[index],))
    tokens, last = await _drain(engine.generate(request))
    assert last.finish_reason is FinishReason.STOP_TOKEN
    assert last.stop_token_id == reference[index]
    assert tokens == reference[:index]


async def test_seeded_sampling_is_reproducible(engine: NativeEngine) -> None:
    def seeded(seed: int) -> EngineRequest:
        sampling = SamplingParams(temperature=1.0, top_p=0.95, top_k=100, seed=seed)
        return _request(
            engine, "Invent a name for a dragon.", max_tokens=16, sampling=sampling, ignore_eos=True
        )

    first, _ = await _drain(engine.generate(seeded(123)))
    again, _ = await _drain(engine.generate(seeded(123)))
    other, _ = await _drain(engine.generate(seeded(124)))
    assert first == again
    assert first != other


async def test_logprobs_with_sorted_top_candidates(engine: NativeEngine) -> None:
    request = _request(
        engine, "Say something.", max_tokens=6, sampling=SamplingParams(temperature=0.7, seed=1)
    )
    request = EngineRequest(
        request.request_id, request.prompt_token_ids, request.sampling, request.stopping, True, 5
    )
    outputs = [output async for output in engine.generate(request)]
    tokens = [t for o in outputs for t in o.token_ids]
    logprobs = [lp for o in outputs for lp in o.logprobs]
    assert [lp.token_id for lp in logprobs] == tokens
    for lp in logprobs:
        assert lp.logprob <= 0.0
        assert len(lp.top) == 5
        values = [t.logprob for t in lp.top]
        assert values == sorted(values, reverse=True)
        assert lp.logprob <= values[0]


async def test_cancel_frees_the_slot(engine: NativeEngine) -> None:
    request = _request(engine, "Write a long story.", max_tokens=500, ignore_eos=True)
    stream = engine.generate(request)
    await anext(stream)
    assert engine.load().active_requests == 1
    engine.cancel(request.request_id)
    _, last = await _drain(stream)
    assert last.finish_reason is FinishReason.CANCELLED
    assert engine.load().active_requests == 0  # the slot is freed before the final output is sent


async def test_closing_the_stream_early_cancels(engine: NativeEngine) -> None:
    started = engine.generate(_request(engine, "Write a long story.", max_tokens=500, ignore_eos=True))
    await anext(started)
    await started.aclose()
    never_read = engine.generate(_request(engine, "Write a long story.", max_tokens=500, ignore_eos=True))
    await never_read.aclose()
    await _barrier(engine)
    assert engine.load().active_requests == 0


async def test_cancelling_the_consumer_task_cancels(engine: NativeEngine) -> None:
    stream = engine.generate(_request(engine, "Write a long story.", max_tokens=500, ignore_eos=True))
    first_output = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            first_output.set()

    task = asyncio.create_task(consume())
    await first_output.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _barrier(engine)
    assert engine.load().active_requests == 0


async def test_overload_raises_with_retry_hint(engine: NativeEngine) -> None:
    requests = [
        _request(engine, "Write a long story.", max_tokens=500, ignore_eos=True)
        for _ in range(MAX_BATCH + MAX_WAITING)
    ]
    ids = [r.request_id for r in requests]
    streams = [engine.generate(r) for r in requests]
    load = engine.load()
    assert load.active_requests + load.waiting_requests == MAX_BATCH + MAX_WAITING
    with pytest.raises(EngineOverloaded) as overloaded:
        engine.generate(_request(engine, "One more", max_tokens=4))
    assert overloaded.value.retry_after_s > 0
    for stream, request_id in zip(streams, ids, strict=True):
        engine.cancel(request_id)
        _, last = await _drain(stream)
        assert last.finish_reason is FinishReason.CANCELLED
    assert engine.load().active_requests == 0 and engine.load().waiting_requests == 0


async def test_shutdown_cancels_running_requests() -> None:
    engine = NativeEngine(NativeEngineConfig(max_batch_size=2, context_length=256))
    await engine.start()
    assert engine.info.engine_name == "native" and engine.info.vocab_size == 49152
    stream = engine.generate(_request(engine, "Write a long story.", max_tokens=200, ignore_eos=True))
    await anext(stream)
    await engine.shutdown()
    _, last = await _drain(stream)
    assert last.finish_reason is FinishReason.CANCELLED
    with pytest.raises(EngineError):
        engine.generate(_request(engine, "too late", max_tokens=2))


async def test_a_slow_reader_gets_its_pending_tokens_coalesced(engine: NativeEngine) -> None:
    """Tokens produced while nobody reads pile up in one output, not one message per step."""
    unread = engine.generate(_request(engine, "Name some rivers.", max_tokens=12, ignore_eos=True))
    # Admitted after the unread request and longer, so it finishes after it: by then every
    # output of the unread request has been delivered to its mailbox.
    await _drain(engine.generate(_request(engine, "Name some lakes.", max_tokens=14, ignore_eos=True)))
    outputs = [output async for output in unread]
    assert len(outputs) == 1
    assert len(outputs[0].token_ids) == 12
    assert outputs[0].finish_reason is FinishReason.LENGTH
