"""Drafts of several decoding requests verified in one shared pass: lossless, and isolated per request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from engines.contract import (
    ChatMessage,
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    TokenId,
)
from engines.native import steps
from engines.native.engine import NativeEngine, NativeEngineConfig
from tests.engine_runs import Run, drain

QUESTIONS = (
    "Write a short story about a lighthouse keeper.",
    "List the planets of the solar system, one per line.",
    "Explain how a bicycle works.",
)


@pytest.fixture(scope="module")
def engine() -> Iterator[NativeEngine]:
    """Speculation for up to 4 requests decoding together (their drafts verified in one pass)."""
    built = NativeEngine(
        NativeEngineConfig(max_batch_size=4, context_length=1024, prefix_cache_mb=0, speculate_max_decoding=4)
    )
    asyncio.run(built.start())
    yield built
    asyncio.run(built.shutdown())


_ids = iter(range(1_000_000))


def requests(engine: NativeEngine, method: SpeculationMethod) -> list[EngineRequest]:
    tokenizer = engine.tokenizer
    return [
        EngineRequest(
            request_id=RequestId(f"v{next(_ids)}"),
            prompt_token_ids=tuple(
                TokenId(t) for t in tokenizer.encode(tokenizer.render_chat([ChatMessage("user", q)]))
            ),
            sampling=SamplingParams(temperature=0.0),
            stopping=StoppingParams(max_tokens=40, ignore_eos=True),
            logprobs=True,
            speculation=SpeculationParams(method, 4),
        )
        for q in QUESTIONS
    ]


async def together(engine: NativeEngine, batch: list[EngineRequest]) -> list[Run]:
    return list(await asyncio.gather(*(drain(engine.generate(r)) for r in batch)))


@pytest.mark.parametrize("method", [SpeculationMethod.EAGLE3, SpeculationMethod.NGRAM])
def test_shared_verification_is_lossless(
    engine: NativeEngine, method: SpeculationMethod, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = asyncio.run(together(engine, requests(engine, SpeculationMethod.OFF)))
    shared: list[int] = []
    real = steps.verify_batch

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]  # a monkeypatch
        shared.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "verify_batch", counting)
    speculated = asyncio.run(together(engine, requests(engine, method)))
    assert shared and max(shared) > 1  # drafts of several requests were verified together
    for plain, fast in zip(reference, speculated, strict=True):
        assert fast.tokens == plain.tokens
        assert fast.logprobs == pytest.approx(plain.logprobs, abs=1e-3)
    if method is SpeculationMethod.EAGLE3:
        assert sum(r.stats.accepted_draft_tokens for r in speculated) > 0


def test_a_failed_shared_verification_is_retried_per_request(
    engine: NativeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = asyncio.run(together(engine, requests(engine, SpeculationMethod.OFF)))

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]  # a monkeypatch
        raise RuntimeError("shared verification failed (injected)")

    monkeypatch.setattr(steps, "verify_batch", failing)
    retried = asyncio.run(together(engine, requests(engine, SpeculationMethod.EAGLE3)))
    assert [r.tokens for r in retried] == [r.tokens for r in reference]
