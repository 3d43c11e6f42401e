"""Speculative decoding in the native engine (prompt lookup and the shipped EAGLE-3 head):
lossless, counted, cancellable, mixed freely with requests that do not speculate.

Engine-level tests drive ``NativeEngine`` through the contract; one goes through
the real gRPC API. The sampled-distribution tests need thousands of draws, so
they run the engine's rejection sampler on its own over known distributions;
the bound is shown to reject deliberately wrong acceptance rules.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import torch
from tokenwire.v1 import generation_pb2

from engines.contract import (
    EngineOutput,
    EngineRequest,
    FinishReason,
    FinishStats,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    TokenId,
)
from engines.native import drafting, sampling
from engines.native.eagle3.head import DEFAULT_HEAD, read_manifest
from engines.native.engine import NativeEngine, NativeEngineConfig
from engines.native.sampling import RequestSampler
from tests.engine_runs import outputs_and_tokens, prompt_request
from tests.streams import collect
from tests.stubs import GenerationStub

DRAFT_LENGTH = 4
OFF = SpeculationParams(SpeculationMethod.OFF, DRAFT_LENGTH)
NGRAM = SpeculationParams(SpeculationMethod.NGRAM, DRAFT_LENGTH)
EAGLE3 = SpeculationParams(SpeculationMethod.EAGLE3, DRAFT_LENGTH)
DRAFTERS = pytest.mark.parametrize("drafter", [NGRAM, EAGLE3], ids=["ngram", "eagle3"])

COPY_HEAVY = (
    "Repeat this list exactly, one per line:\n"
    "- apples, pears and plums\n- carrots, leeks and onions\n- bread, butter and jam\n"
    "- apples, pears and plums\n- carrots, leeks and onions\n- bread, butter and jam"
)
PROMPTS = [
    COPY_HEAVY,
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a hash table is in two sentences.",
    "def add(a, b):\n    return a + b\n\nRewrite this Python function with type hints.",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[NativeEngine]:
    engine = NativeEngine(
        NativeEngineConfig(max_batch_size=4, context_length=1024, draft_length=DRAFT_LENGTH)
    )
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.shutdown())


# This module's requests: tokenized chat prompts with the speculation given (None: the engine's
# default), 32 tokens unless a test says otherwise; _run reads one to its end: (outputs, tokens).
_request = functools.partial(prompt_request, max_tokens=32, id_prefix="spec")
_run = outputs_and_tokens


def _assert_counts_consistent(outputs: list[EngineOutput], tokens: list[TokenId]) -> FinishStats:
    """Each step yields its accepted drafts plus one target token; a stop/EOS token is not output."""
    last = outputs[-1]
    assert last.stats is not None and last.finish_reason is not None
    stats = last.stats
    not_output = 1 if last.finish_reason in (FinishReason.END_OF_SEQUENCE, FinishReason.STOP_TOKEN) else 0
    assert len(tokens) == stats.accepted_draft_tokens + stats.decode_steps - not_output
    assert stats.accepted_draft_tokens <= stats.draft_tokens
    for output in outputs:
        # One output per step (the reader keeps up here, but coalescing only ever merges steps).
        assert len(output.token_ids) <= (DRAFT_LENGTH + 1) * stats.decode_steps
    return stats


@DRAFTERS
async def test_greedy_output_is_identical_with_and_without_speculation(
    engine: NativeEngine, drafter: SpeculationParams
) -> None:
    accepted: dict[str, int] = {}
    for prompt in PROMPTS:
        _, plain = await _run(engine.generate(_request(engine, prompt, OFF)))
        outputs, speculated = await _run(engine.generate(_request(engine, prompt, drafter)))
        assert speculated == plain, prompt
        stats = _assert_counts_consistent(outputs, speculated)
        accepted[prompt] = stats.accepted_draft_tokens
    # Several tokens per step on the copy-heavy prompt: fewer steps than tokens (EAGLE-3 requests
    # take prompt lookup's draft where a 3-token match proposes more than the head).
    assert accepted[COPY_HEAVY] >= 8
    if drafter is EAGLE3:
        # The head drafts usefully on every kind of prompt, not only on copies.
        assert all(count > 0 for count in accepted.values()), accepted


async def test_requests_with_different_drafters_batch_together(engine: NativeEngine) -> None:
    """EAGLE-3, prompt lookup and no speculation in flight at once: each output is its solo one."""
    prompts = PROMPTS[:3]
    solo = [(await _run(engine.generate(_request(engine, p, OFF))))[1] for p in prompts]
    mixes = [EAGLE3, NGRAM, OFF]
    streams = [
        engine.generate(_request(engine, p, mixes[(i + shift) % 3]))
        for shift in range(2)
        for i, p in enumerate(prompts)
    ]
    results = await asyncio.gather(*(_run(stream) for stream in streams))
    for index, (outputs, tokens) in enumerate(results):
        assert tokens == solo[index % 3]
        _assert_counts_consistent(outputs, tokens)


@DRAFTERS
async def test_penalties_min_tokens_and_logprobs_see_each_accepted_token(
    engine: NativeEngine, drafter: SpeculationParams
) -> None:
    """Processors run per position on the history that position would have had without speculation."""
    sampling_params = SamplingParams(temperature=0.0, repetition_penalty=1.2, frequency_penalty=0.3)

    def request(speculation: SpeculationParams) -> EngineRequest:
        return _request(
            engine, COPY_HEAVY, speculation, sampling=sampling_params, logprobs=True, min_tokens=20
        )

    plain_outputs, plain = await _run(engine.generate(request(OFF)))
    outputs, speculated = await _run(engine.generate(request(drafter)))
    assert speculated == plain
    _assert_counts_consistent(outputs, speculated)
    plain_logprobs = [lp for o in plain_outputs for lp in o.logprobs]
    logprobs = [lp for o in outputs for lp in o.logprobs]
    assert [lp.token_id for lp in logprobs] == speculated
    for got, want in zip(logprobs, plain_logprobs, strict=True):
        assert got.logprob == pytest.approx(want.logprob, abs=1e-3)
        assert [t.token_id for t in got.top] == [t.token_id for t in want.top]


@DRAFTERS
async def test_stop_token_and_max_tokens_inside_an_accepted_run(
    engine: NativeEngine, drafter: SpeculationParams
) -> None:
    _, reference = await _run(engine.generate(_request(engine, COPY_HEAVY, OFF, max_tokens=40)))
    # A token first produced well into the output, where drafts are being accepted.
    index = next(i for i, t in enumerate(reference) if i >= 12 and t not in reference[:i])
    stop = reference[index]
    outputs, tokens = await _run(
        engine.generate(_request(engine, COPY_HEAVY, drafter, max_tokens=40, stop_token_ids=(stop,)))
    )
    assert tokens == reference[:index]
    assert outputs[-1].finish_reason is FinishReason.STOP_TOKEN and outputs[-1].stop_token_id == stop
    _assert_counts_consistent(outputs, tokens)

    for max_tokens in (7, 13):
        outputs, tokens = await _run(
            engine.generate(_request(engine, COPY_HEAVY, drafter, max_tokens=max_tokens, ignore_eos=True))
        )
        assert tokens == reference[:max_tokens]
        assert outputs[-1].finish_reason is FinishReason.LENGTH
        _assert_counts_consistent(outputs, tokens)


async def test_speculation_off_per_request(engine: NativeEngine) -> None:
    outputs, tokens = await _run(
        engine.generate(_request(engine, COPY_HEAVY, OFF, max_tokens=12, ignore_eos=True))
    )
    stats = outputs[-1].stats
    assert stats is not None and len(tokens) == 12
    assert stats.draft_tokens == 0 and stats.accepted_draft_tokens == 0 and stats.decode_steps == 12
    assert all(len(o.token_ids) == 1 for o in outputs)


async def test_engine_default_speculates_with_the_shipped_head(engine: NativeEngine) -> None:
    speculative = engine.info.speculative
    assert speculative.method is SpeculationMethod.EAGLE3 and speculative.draft_length == DRAFT_LENGTH
    assert speculative.available_methods == tuple(SpeculationMethod)
    assert speculative.draft_model == f"{DEFAULT_HEAD.stem}@sha256:{read_manifest(DEFAULT_HEAD)['sha256']}"
    outputs, _ = await _run(engine.generate(_request(engine, COPY_HEAVY, None, max_tokens=24)))
    stats = outputs[-1].stats
    assert stats is not None and stats.draft_tokens > 0


@DRAFTERS
async def test_seeded_sampling_with_speculation_is_reproducible(
    engine: NativeEngine, drafter: SpeculationParams
) -> None:
    def seeded(seed: int) -> EngineRequest:
        sampling_params = SamplingParams(temperature=0.7, seed=seed)
        return _request(engine, COPY_HEAVY, drafter, max_tokens=24, sampling=sampling_params, ignore_eos=True)

    first_outputs, first = await _run(engine.generate(seeded(5)))
    _, again = await _run(engine.generate(seeded(5)))
    assert first == again
    _assert_counts_consistent(first_outputs, first)


@DRAFTERS
async def test_cancellation_mid_speculation_frees_the_slot(
    engine: NativeEngine, drafter: SpeculationParams
) -> None:
    request = _request(engine, COPY_HEAVY, drafter, max_tokens=500, ignore_eos=True)
    stream = engine.generate(request)
    # Read until a step has emitted several tokens: the request is speculating.
    async for output in stream:
        if len(output.token_ids) > 1:
            break
    assert engine.load().active_requests == 1
    engine.cancel(request.request_id)
    outputs = [output async for output in stream]
    assert outputs[-1].finish_reason is FinishReason.CANCELLED
    stats = outputs[-1].stats
    assert stats is not None and stats.accepted_draft_tokens > 0
    assert engine.load().active_requests == 0  # freed before the final output is sent


def test_prompt_lookup_proposes_what_followed_the_latest_match() -> None:
    history = [TokenId(t) for t in (1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3)]
    assert drafting.propose(history, 2) == (7, 8)  # the latest earlier "1 2 3", not the first
    falls_back = [TokenId(t) for t in (7, 4, 5, 6, 1, 4, 5)]  # no earlier "1 4 5", but "4 5"
    assert drafting.propose(falls_back, 3) == (6, 1, 4)
    assert drafting.propose([TokenId(t) for t in (4, 5, 6, 5)], 3) == ()  # one-token matches don't draft
    assert drafting.propose([TokenId(t) for t in (1, 2, 3)], 4) == ()
    assert drafting.propose(history, 0) == ()


# The sampled case. A wrong verification rule (accept every draft, or on rejection resample
# from p without removing the draft) over-represents the draft token by (1 - p(d)) or by
# (1 - p(d)) * p(d) = 0.21 at p(d) = 0.3: a total-variation distance far above the sampling
# noise of N draws. The correct rule's empirical distribution stays within that noise.

VOCAB = 40
DRAWS = 12_000
TV_BOUND = 0.04
"""Expected TV of N = 12k draws over 40 outcomes is about 0.5 * sqrt(2 / (pi * N)) * sum(sqrt(p)) < 0.025."""


def _target_and_draft() -> tuple[torch.Tensor, torch.Tensor, int]:
    logits = torch.randn(VOCAB, generator=torch.Generator().manual_seed(7)) * 2.0
    temperature = 1.5
    probs = torch.softmax(logits / temperature, dim=-1)
    draft = int(torch.argsort(probs, descending=True)[2])  # a plausible but not dominant draft
    return logits, probs, draft


def _emitted_distribution(logits: torch.Tensor, draft: int) -> torch.Tensor:
    sampler = RequestSampler(
        SamplingParams(temperature=1.5, seed=11),
        prompt_token_ids=[0],
        vocab_size=VOCAB,
        banned_before_min_tokens=(),
        min_tokens=0,
        logprobs=False,
        top_logprobs=0,
    )
    counts = torch.zeros(VOCAB)
    for _ in range(DRAWS):
        token, _ = sampler.verify(logits, draft)
        counts[token.token_id] += 1
    return counts / DRAWS


def _total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())


def test_rejection_sampling_emits_the_target_distribution() -> None:
    logits, probs, draft = _target_and_draft()
    assert 0.05 < float(probs[draft]) < 0.5
    assert _total_variation(_emitted_distribution(logits, draft), probs) < TV_BOUND


def _always_accept(probs: torch.Tensor, draft: int, generator: torch.Generator) -> bool:
    return True


def _keep_draft_in_residual(probs: torch.Tensor, draft: int) -> torch.Tensor:
    return probs


@pytest.mark.parametrize(
    ("name", "wrong"),
    [("accept_draft", _always_accept), ("residual", _keep_draft_in_residual)],
)
def test_the_distribution_bound_rejects_wrong_verification(
    monkeypatch: pytest.MonkeyPatch, name: str, wrong: Callable[..., Any]
) -> None:
    logits, probs, draft = _target_and_draft()
    monkeypatch.setattr(sampling, name, wrong)
    assert _total_variation(_emitted_distribution(logits, draft), probs) > TV_BOUND


# Through the gRPC API.

COPY_CHAT = generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content=COPY_HEAVY)])
SPEC = generation_pb2.SpeculativeOptions


async def test_grpc_speculation_is_lossless_and_reports_its_stats(generation: GenerationStub) -> None:
    def request(options: generation_pb2.SpeculativeOptions) -> generation_pb2.GenerateRequest:
        return generation_pb2.GenerateRequest(
            chat=COPY_CHAT,
            sampling=generation_pb2.SamplingParams(temperature=0.0),
            stopping=generation_pb2.StoppingCriteria(max_tokens=32),
            speculative=options,
        )

    plain = await collect(generation.Generate(request(SPEC(method=SPEC.SPECULATIVE_METHOD_OFF))))
    speculated = await collect(
        generation.Generate(request(SPEC(method=SPEC.SPECULATIVE_METHOD_NGRAM, draft_length=6)))
    )
    default = await collect(generation.Generate(request(SPEC())))
    assert speculated.token_ids == plain.token_ids == default.token_ids
    assert speculated.text == plain.text
    assert plain.finished is not None and speculated.finished is not None and default.finished is not None
    assert plain.finished.speculative.draft_tokens == 0
    assert plain.finished.speculative.decode_steps == plain.finished.usage.completion_tokens + (
        1 if plain.reason == generation_pb2.FINISH_REASON_END_OF_SEQUENCE else 0
    )
    for result in (speculated, default):
        assert result.finished is not None
        stats, usage = result.finished.speculative, result.finished.usage
        assert stats.accepted_tokens > 0 and stats.draft_tokens >= stats.accepted_tokens
        not_output = 1 if result.reason == generation_pb2.FINISH_REASON_END_OF_SEQUENCE else 0
        assert usage.completion_tokens == stats.accepted_tokens + stats.decode_steps - not_output


def test_engine_config_rejects_a_bad_draft_length() -> None:
    with pytest.raises(ValueError, match="draft_length"):
        NativeEngineConfig(draft_length=0)
    assert replace(NativeEngineConfig(), draft_length=16).draft_length == 16
