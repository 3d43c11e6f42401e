"""The KV cache's memory budget through the engine contract: requests that do not fit wait their turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from engines.contract import (
    EngineRequest,
    FinishReason,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    StoppingParams,
    TokenId,
)
from engines.native.engine import NativeEngine, NativeEngineConfig

# 8 MiB hold 182 positions of SmolLM2 (45 KiB each): the context shrinks to fit, and two
# requests that may each reach ~110 positions cannot hold slots at the same time.
BUDGET_MB = 8
PROMPT = tuple(TokenId(t) for t in range(1000, 1010))


@pytest.fixture(scope="module")
def engine() -> Iterator[NativeEngine]:
    config = NativeEngineConfig(
        max_batch_size=4, kv_cache_mb=BUDGET_MB, speculation=SpeculationMethod.OFF, draft_head=None
    )
    engine = NativeEngine(config)
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.shutdown())


def test_context_is_capped_to_what_the_budget_holds(engine: NativeEngine) -> None:
    assert engine.info.context_length == BUDGET_MB * 2**20 // (2 * 30 * 3 * 64 * 4)


def test_a_request_that_does_not_fit_waits_for_the_one_before(engine: NativeEngine) -> None:
    async def run() -> list[tuple[str, FinishReason | None]]:
        events: list[tuple[str, FinishReason | None]] = []

        async def one(name: str) -> None:
            request = EngineRequest(
                RequestId(name),
                PROMPT,
                SamplingParams(temperature=0.0),
                StoppingParams(max_tokens=100, ignore_eos=True),
            )
            async for output in engine.generate(request):
                events.append((name, output.finish_reason))

        await asyncio.gather(one("first"), one("second"))
        return events

    events = asyncio.run(run())
    first_end = events.index(("first", FinishReason.LENGTH))
    second_start = next(i for i, (name, _) in enumerate(events) if name == "second")
    assert second_start > first_end, "the second request ran while the first held the budget"
    assert events[-1] == ("second", FinishReason.LENGTH)
    assert engine.load().active_requests == 0


def test_requests_that_fit_together_run_together(engine: NativeEngine) -> None:
    async def run() -> list[str]:
        order: list[str] = []

        async def one(name: str) -> None:
            request = EngineRequest(
                RequestId(name), PROMPT, SamplingParams(temperature=0.0), StoppingParams(max_tokens=20)
            )
            async for output in engine.generate(request):
                if output.token_ids or output.finish_reason is not None:
                    order.append(name)

        await asyncio.gather(one("a"), one("b"))
        return order

    order = asyncio.run(run())
    # Interleaved: b's tokens arrive before a has finished.
    assert order.index("b") < len(order) - 1 - order[::-1].index("a")
