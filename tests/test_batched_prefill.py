"""Batched prefill: prompts waiting together share forward passes, and nothing they generate changes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from engines.contract import ChatMessage, EngineRequest, RequestId, SamplingParams, StoppingParams, TokenId
from engines.native import steps
from engines.native.engine import NativeEngine, NativeEngineConfig
from tests.engine_runs import Run, drain

QUESTIONS = (
    "What is the capital of France?",
    "Write a limerick about a cat who loves the sea and sails every morning before breakfast.",
    "Name three primary colours.",
    "Explain in two sentences why the sky looks blue during the day and red at sunset.",
)


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, NativeEngine]]:
    """fcfs and batched engines, no prefix cache (each prompt is computed), 64-token chunks."""
    built = {
        mode: NativeEngine(
            NativeEngineConfig(
                max_batch_size=4,
                context_length=1024,
                prefix_cache_mb=0,
                prefill=mode,
                prefill_chunk_tokens=64,
            )
        )
        for mode in ("fcfs", "batched")
    }
    for engine in built.values():
        asyncio.run(engine.start())
    yield built
    for engine in built.values():
        asyncio.run(engine.shutdown())


_ids = iter(range(1_000_000))


def burst(engine: NativeEngine, padding: int) -> list[EngineRequest]:
    tokenizer = engine.tokenizer
    requests = []
    for i, question in enumerate(QUESTIONS):
        system = f"Assistant {i}. " + "Answer carefully. " * (padding * (i + 1))
        ids = tokenizer.encode(
            tokenizer.render_chat([ChatMessage("system", system), ChatMessage("user", question)])
        )
        requests.append(
            EngineRequest(
                request_id=RequestId(f"b{next(_ids)}"),
                prompt_token_ids=tuple(TokenId(t) for t in ids),
                sampling=SamplingParams(temperature=0.0),
                stopping=StoppingParams(max_tokens=10, ignore_eos=True),
                logprobs=True,
            )
        )
    return requests


async def all_at_once(engine: NativeEngine, requests: list[EngineRequest]) -> list[Run]:
    return list(await asyncio.gather(*(drain(engine.generate(r)) for r in requests)))


def test_a_burst_prefilled_together_generates_what_one_by_one_does(engines: dict[str, NativeEngine]) -> None:
    requests = burst(engines["fcfs"], padding=12)  # prompts of ~60 to ~250 tokens: several chunks each
    assert len({len(r.prompt_token_ids) // 64 for r in requests}) > 1
    reference = asyncio.run(all_at_once(engines["fcfs"], requests))
    batched = asyncio.run(all_at_once(engines["batched"], requests))
    for one, other in zip(reference, batched, strict=True):
        assert other.tokens == one.tokens
        assert other.logprobs == pytest.approx(one.logprobs, abs=1e-3)


def test_a_failed_shared_prompt_pass_is_retried_per_request(
    engines: dict[str, NativeEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = burst(engines["batched"], padding=4)
    reference = asyncio.run(all_at_once(engines["fcfs"], requests))
    real = steps.prefill_batch
    failures = []

    def failing(model, cache, batch, n_tokens, layers):  # type: ignore[no-untyped-def]  # a monkeypatch
        if len(batch) > 1:
            failures.append(len(batch))
            raise RuntimeError("shared prompt pass failed (injected)")
        return real(model, cache, batch, n_tokens, layers)

    monkeypatch.setattr(steps, "prefill_batch", failing)
    retried = asyncio.run(all_at_once(engines["batched"], requests))
    assert failures  # the shared pass was tried and failed
    assert [r.tokens for r in retried] == [r.tokens for r in reference]


def test_the_budget_is_split_evenly_in_whole_blocks(engines: dict[str, NativeEngine]) -> None:
    scheduler = engines["batched"]._scheduler
    assert scheduler is not None
    requests = burst(engines["batched"], padding=12)

    class Waiting:
        def __init__(self, request: EngineRequest, prefilled: int) -> None:
            self.request, self.prefilled, self.cache_checked = request, prefilled, True
            self.progress = type("P", (), {"started_at": 0.0})()

        @property
        def prompt_len(self) -> int:
            return len(self.request.prompt_token_ids)

    waiting = [Waiting(r, 0) for r in requests]
    waiting[0].prefilled = waiting[0].prompt_len - 5  # 5 tokens left
    plan = scheduler._prefill_plan(waiting, [])  # type: ignore[arg-type]  # duck-typed states
    # 64 tokens over 4 prompts: 16 each, the one with 5 left in a pass of its own.
    assert [(n, [id(s) for s in group]) for n, group in plan] == [
        (16, [id(w) for w in waiting[1:]]),
        (5, [id(waiting[0])]),
    ]
