"""SimEngine through the engine contract (no gRPC): pacing shape, replicable steps, cancel, overload."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from engines.contract import (
    Engine,
    EngineError,
    EngineLoad,
    EngineOutput,
    EngineOverloaded,
    EngineRequest,
    FinishReason,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    StoppingParams,
    TokenId,
    Tokenizer,
)
from engines.sim import PASSAGE, SimEngine, SimEngineConfig, SimMode, load_tokenizer, step_sizes

FAST = SimEngineConfig(step_interval_s=0.002)
"""Latency mode with the default draws, stepping a little faster than the default."""


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    # Loaded once: every engine below shares it instead of loading it at each start.
    return load_tokenizer(SimEngineConfig())


@asynccontextmanager
async def _running(config: SimEngineConfig, tokenizer: Tokenizer) -> AsyncIterator[SimEngine]:
    engine = SimEngine(config, tokenizer=tokenizer)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.shutdown()


_ids = (f"sim-{n}" for n in itertools.count())


def _request(max_tokens: int, *, request_id: str | None = None, **stopping: Any) -> EngineRequest:
    return EngineRequest(
        request_id=RequestId(request_id if request_id is not None else next(_ids)),
        prompt_token_ids=(TokenId(1), TokenId(2), TokenId(3)),
        sampling=SamplingParams(),
        stopping=StoppingParams(max_tokens=max_tokens, **stopping),
    )


async def _drain(stream: AsyncGenerator[EngineOutput, None]) -> list[EngineOutput]:
    return [output async for output in stream]


def _tokens(outputs: list[EngineOutput]) -> list[TokenId]:
    return [token for output in outputs for token in output.token_ids]


def _steps_for(request_id: str, total: int, config: SimEngineConfig) -> list[int]:
    """The engine's steps for ``total`` tokens, by the public draw (the last one capped)."""
    draws = step_sizes(
        request_id, acceptance=config.acceptance, max_draft=config.draft_length, seed=config.seed
    )
    steps: list[int] = []
    while sum(steps) < total:
        steps.append(min(next(draws), total - sum(steps)))
    return steps


def test_sim_engine_implements_the_contract() -> None:
    engine: Engine = SimEngine()  # checked by mypy: the class satisfies the Protocol
    assert engine.load() == EngineLoad(0, 0)


def test_step_sizes_are_reproducible_per_request_id() -> None:
    def draws(request_id: str, **kwargs: Any) -> list[int]:
        settings: dict[str, Any] = {"acceptance": 0.81, "max_draft": 3, "seed": 0, **kwargs}
        return list(itertools.islice(step_sizes(request_id, **settings), 10_000))

    first = draws("a")
    assert first == draws("a")
    assert first != draws("b")
    assert first != draws("a", seed=1)
    assert set(first) == {1, 2, 3, 4}
    assert 2.9 < sum(first) / len(first) < 3.1  # 1 + p + p^2 + p^3 = 2.9975
    assert set(draws("a", max_draft=0)) == {1}
    assert set(draws("a", acceptance=1.0)) == {4}
    with pytest.raises(ValueError, match="acceptance"):
        next(step_sizes("a", acceptance=1.5, max_draft=3, seed=0))


async def test_outputs_follow_the_replicable_steps_and_end_with_length(tokenizer: Tokenizer) -> None:
    async with _running(FAST, tokenizer) as engine:
        request = _request(60)
        outputs = await _drain(engine.generate(request))
        assert engine.load() == EngineLoad(0, 0)
    steps = _steps_for(request.request_id, 60, FAST)
    assert len(_tokens(outputs)) == 60
    final = outputs[-1]
    assert final.finish_reason is FinishReason.LENGTH
    assert all(o.finish_reason is None for o in outputs[:-1])
    assert final.stats is not None
    assert final.stats.decode_steps == len(steps)
    assert final.stats.draft_tokens == 3 * len(steps)
    assert final.stats.accepted_draft_tokens == 60 - len(steps)
    # One output per step, unless the reader fell behind and steps coalesced: every output
    # boundary is a step boundary either way.
    step_bounds = set(itertools.accumulate(steps))
    output_bounds = set(itertools.accumulate(len(o.token_ids) for o in outputs))
    assert output_bounds <= step_bounds


async def test_requests_step_together_in_one_batch(tokenizer: Tokenizer) -> None:
    async with _running(dataclasses.replace(FAST, max_batch_size=4), tokenizer) as engine:
        streams = [engine.generate(_request(100_000)) for _ in range(3)]
        for stream in streams:
            first = await anext(stream)
            assert first.token_ids
            assert first.finish_reason is None
        assert engine.load() == EngineLoad(active_requests=3, waiting_requests=0)
        for stream in streams:
            await stream.aclose()
        assert engine.load() == EngineLoad(0, 0)


async def test_cancel_frees_the_slot_at_once_and_ends_cancelled(tokenizer: Tokenizer) -> None:
    config = dataclasses.replace(FAST, max_batch_size=1, max_waiting=1)
    async with _running(config, tokenizer) as engine:
        running = _request(100_000)
        stream = engine.generate(running)
        assert (await anext(stream)).finish_reason is None
        queued = engine.generate(_request(5))
        assert engine.load() == EngineLoad(active_requests=1, waiting_requests=1)
        engine.cancel(running.request_id)
        assert engine.load() == EngineLoad(active_requests=0, waiting_requests=1)
        rest = await _drain(stream)
        assert rest[-1].finish_reason is FinishReason.CANCELLED
        assert rest[-1].stats is not None
        # The freed slot goes to the queued request, which then runs to its end.
        queued_outputs = await _drain(queued)
        assert len(_tokens(queued_outputs)) == 5
        assert queued_outputs[-1].finish_reason is FinishReason.LENGTH
        engine.cancel(running.request_id)  # finished: a no-op


async def test_closing_an_unread_stream_cancels_its_request(tokenizer: Tokenizer) -> None:
    async with _running(FAST, tokenizer) as engine:
        stream = engine.generate(_request(100_000))
        assert engine.load().active_requests + engine.load().waiting_requests == 1
        await stream.aclose()
        assert engine.load() == EngineLoad(0, 0)


async def test_overload_raises_with_a_retry_estimate(tokenizer: Tokenizer) -> None:
    config = dataclasses.replace(FAST, max_batch_size=1, max_waiting=1)
    async with _running(config, tokenizer) as engine:
        held = [engine.generate(_request(100_000)) for _ in range(2)]
        with pytest.raises(EngineOverloaded) as raised:
            engine.generate(_request(5))
        assert raised.value.retry_after_s > 0
        for stream in held:
            await stream.aclose()
        await _drain(engine.generate(_request(1)))  # room again


async def test_a_request_id_in_flight_cannot_be_reused(tokenizer: Tokenizer) -> None:
    async with _running(FAST, tokenizer) as engine:
        stream = engine.generate(_request(100_000, request_id="twice"))
        with pytest.raises(EngineError, match="already in flight"):
            engine.generate(_request(5, request_id="twice"))
        await stream.aclose()
        assert len(_tokens(await _drain(engine.generate(_request(5, request_id="twice"))))) == 5


async def test_throughput_mode_emits_one_token_per_step(tokenizer: Tokenizer) -> None:
    config = dataclasses.replace(SimEngineConfig.for_mode(SimMode.THROUGHPUT), base_step_s=0.001)
    async with _running(config, tokenizer) as engine:
        assert engine.info.max_batch_size == 512
        assert engine.info.speculative.method is SpeculationMethod.OFF
        outputs = await _drain(engine.generate(_request(20)))
    assert len(_tokens(outputs)) == 20
    assert all(len(o.token_ids) >= 1 for o in outputs)
    final = outputs[-1]
    assert final.finish_reason is FinishReason.LENGTH
    assert final.stats is not None
    assert (final.stats.decode_steps, final.stats.draft_tokens, final.stats.accepted_draft_tokens) == (
        20,
        0,
        0,
    )


async def test_tokens_decode_to_the_passage_cycling(tokenizer: Tokenizer) -> None:
    passage_tokens = len(tokenizer.encode(PASSAGE, add_special_tokens=False))
    config = dataclasses.replace(FAST, acceptance=1.0)  # 4 tokens a step: the long read is quicker
    async with _running(config, tokenizer) as engine:
        assert engine.info.engine_name == "sim"
        assert engine.info.model_name == "SmolLM2-135M-Instruct (simulated timing)"
        assert engine.info.speculative.method is SpeculationMethod.EAGLE3
        assert engine.info.speculative.name == "eagle3-simulated"
        tokens = _tokens(await _drain(engine.generate(_request(passage_tokens + 20))))
    assert not set(tokens) & tokenizer.eos_token_ids
    text = tokenizer.decode(tokens)
    assert len(text) > len(PASSAGE)
    assert text in PASSAGE * 3


async def test_a_stop_token_ends_the_request(tokenizer: Tokenizer) -> None:
    async with _running(FAST, tokenizer) as engine:
        request_id = "stop-probe"
        probe = _tokens(await _drain(engine.generate(_request(40, request_id=request_id))))
        # Same id, same offset and steps: stop on a token that first occurs at index >= 5.
        index = next(i for i in range(5, 40) if probe[i] not in probe[:i])
        stop = probe[index]
        outputs = await _drain(engine.generate(_request(40, request_id=request_id, stop_token_ids=(stop,))))
        assert _tokens(outputs) == probe[:index]
        final = outputs[-1]
        assert (final.finish_reason, final.stop_token_id) == (FinishReason.STOP_TOKEN, stop)
        assert final.stats is not None
        # The stop token was generated but not emitted.
        assert final.stats.accepted_draft_tokens + final.stats.decode_steps == index + 1

        # Before min_tokens a stop token does not stop.
        later = next(i for i in range(5, 35) if probe[i] not in probe[:i] + probe[i + 1 : 40])
        guarded = _request(40, request_id=request_id, stop_token_ids=(probe[later],), min_tokens=later + 1)
        outputs = await _drain(engine.generate(guarded))
        assert _tokens(outputs) == probe
        assert outputs[-1].finish_reason is FinishReason.LENGTH


async def test_shutdown_cancels_running_requests(tokenizer: Tokenizer) -> None:
    engine = SimEngine(FAST, tokenizer=tokenizer)
    await engine.start()
    stream = engine.generate(_request(100_000))
    await anext(stream)
    await engine.shutdown()
    rest = await _drain(stream)
    assert rest[-1].finish_reason is FinishReason.CANCELLED
    assert engine.pacing().ticks >= 1
    with pytest.raises(EngineError, match="shutting down"):
        engine.generate(_request(5))


async def test_a_prompt_filling_the_context_ends_without_tokens(tokenizer: Tokenizer) -> None:
    async with _running(dataclasses.replace(FAST, context_length=3), tokenizer) as engine:
        outputs = await _drain(engine.generate(_request(10)))
    assert outputs == [outputs[-1]]
    assert outputs[-1].token_ids == ()
    assert outputs[-1].finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step_interval_s": 0.0}, "step_interval_s"),
        ({"step_interval_s": float("nan")}, "step_interval_s"),
        ({"base_step_s": -1.0}, "base_step_s"),
        ({"per_request_step_s": -1e-6}, "per_request_step_s"),
        ({"max_draft": -1}, "max_draft"),
        ({"max_draft": 65}, "max_draft"),
        ({"acceptance": 1.01}, "acceptance"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_waiting": -1}, "max_waiting"),
        ({"context_length": 1}, "context_length"),
        ({"mode": "latency"}, "mode"),
    ],
)
def test_config_rejects_bad_values(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimEngineConfig(**change)


def test_config_defaults_per_mode() -> None:
    latency = SimEngineConfig.for_mode(SimMode.LATENCY)
    assert latency == SimEngineConfig()
    assert (latency.step_time_s(100), latency.draft_length, latency.max_batch_size) == (0.003, 3, 8)
    throughput = SimEngineConfig.for_mode(SimMode.THROUGHPUT)
    assert (throughput.draft_length, throughput.max_batch_size) == (0, 512)
    # 256 users at one token per step: about 72,000 tokens/s in all.
    assert 70_000 < 256 / throughput.step_time_s(256) < 75_000
