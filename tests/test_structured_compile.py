"""Compiling structured-output formats: the engine's cache and the service's compile queue (no model)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import grpc
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from engines.contract import InvalidStructuredOutput, SamplingParams, StructuredOutput, StructuredOutputKind
from engines.native.sampling import Constraint, RequestSampler
from engines.structured import CheckedFormats, Grammars
from service.errors import InvalidArgument
from service.structured import CompileQueueFull, FormatCompiler

WORDS = ["<eos>", "a", "b", "c", "ab", "yes", "no", "{", "}", '"', ":", "Ġ", "1", "2"]
"""Byte-level pieces ("Ġ" is the space)."""


@pytest.fixture(scope="module")
def grammars() -> Grammars:
    """A tiny byte-level vocabulary: enough for llguidance to build masks."""
    vocab = {word: index for index, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.BPE(vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(["<eos>"])
    return Grammars.from_tokenizer_json(
        tokenizer.to_str(), vocab_size=len(WORDS), eos_token_ids=[0], capacity=2
    )


def _choice(*options: str) -> StructuredOutput:
    return StructuredOutput(StructuredOutputKind.CHOICE, choices=options)


def test_the_cache_keeps_the_most_recently_used_and_hands_out_copies(grammars: Grammars) -> None:
    first = grammars.compile(_choice("yes", "no"))
    assert grammars.compile(_choice("yes", "no")) is first  # a hit
    grammars.compile(_choice("a"))
    grammars.compile(_choice("yes", "no"))  # most recent again
    grammars.compile(_choice("b"))  # evicts "a", the least recently used
    assert len(grammars) == 2
    assert grammars.compile(_choice("yes", "no")) is first
    copy = grammars.matcher(_choice("yes", "no"))
    assert copy is not first
    assert copy.consume_token(WORDS.index("yes"))
    assert not first.is_stopped()  # the cached one is untouched


def test_a_bad_format_raises_the_compilers_reason(grammars: Grammars) -> None:
    with pytest.raises(InvalidStructuredOutput, match="unknown name"):
        grammars.compile(StructuredOutput(StructuredOutputKind.GRAMMAR_LARK, "start: nowhere"))
    with pytest.raises(InvalidStructuredOutput, match="JSON"):
        CheckedFormats().check(StructuredOutput(StructuredOutputKind.JSON_SCHEMA, "{"))


def test_the_grammar_masks_sampling_and_wins_over_bans(grammars: Grammars) -> None:
    spec = _choice("yes", "no")
    # A bias of -100 on "yes" and "no" bans both; the grammar allows nothing else, so it wins.
    params = SamplingParams(temperature=1.0, seed=3, logit_bias=((5, -100.0), (6, -100.0)))  # type: ignore[arg-type]  # ids
    sampler = RequestSampler(
        params,
        prompt_token_ids=[1],
        vocab_size=len(WORDS),
        banned_before_min_tokens=[0],
        min_tokens=0,
        logprobs=False,
        top_logprobs=0,
        constraint=Constraint(lambda: grammars.matcher(spec), grammars.eos_token_ids),
    )
    logits = torch.zeros(len(WORDS))
    logits[1] = 50.0  # "a": the model's favourite, which the grammar forbids
    chosen = sampler.choose(logits).token_id
    assert WORDS[chosen] in ("yes", "no")
    sampler.observe(chosen)
    assert sampler.complete


def test_without_constraint_a_bias_of_minus_100_is_a_ban() -> None:
    params = SamplingParams(temperature=1.0, seed=1, logit_bias=((1, -100.0), (2, 100.0)))  # type: ignore[arg-type]  # ids
    sampler = RequestSampler(
        params,
        prompt_token_ids=[1],
        vocab_size=4,
        banned_before_min_tokens=[],
        min_tokens=0,
        logprobs=False,
        top_logprobs=0,
    )
    processed = sampler.process(torch.tensor([0.0, 300.0, 0.0, 0.0]))
    assert processed[1] == float("-inf") and processed[2] == 100.0
    assert not sampler.plain_argmax


async def test_compiles_run_off_the_event_loop_with_a_time_limit() -> None:
    release = threading.Event()
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def slow(spec: StructuredOutput) -> None:
        threads.append(threading.get_ident())
        release.wait(5)

    compiler = FormatCompiler(slow, time_limit_s=0.2, max_pending=1)
    try:
        started = time.monotonic()
        with pytest.raises(InvalidArgument) as caught:
            await compiler.check(_choice("a"))
        assert time.monotonic() - started < 2
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = caught.value.violations
        assert violation.field == "structured_output.choice.options"
        assert "did not compile within 0.2 s" in violation.description
        assert threads and threads[0] != loop_thread
        # The timed-out compile still holds its place: the next one is refused, not queued forever.
        assert compiler.pending == 1
        with pytest.raises(CompileQueueFull) as full:
            await compiler.check(_choice("b"))
        assert full.value.retry_after_s > 0
    finally:
        release.set()
        compiler.shutdown()


async def test_a_compile_error_names_the_field() -> None:
    def refuse(spec: StructuredOutput) -> None:
        raise InvalidStructuredOutput("bad " + json.dumps(spec.text))

    compiler = FormatCompiler(refuse)
    try:
        with pytest.raises(InvalidArgument) as caught:
            await compiler.check(StructuredOutput(StructuredOutputKind.REGEX, "x"))
        [violation] = caught.value.violations
        assert violation.field == "structured_output.regex"
        assert violation.description == 'does not compile: bad "x"'
        await asyncio.sleep(0)
        assert compiler.pending == 0
    finally:
        compiler.shutdown()


async def test_a_burst_of_one_format_compiles_once_and_none_is_refused() -> None:
    """Fifty requests with one schema at once: the first compiles, the rest wait for it or find it
    known; none is refused for a full queue (16), as a burst of identical requests once was."""
    calls: list[StructuredOutput] = []

    def slow(spec: StructuredOutput) -> None:
        calls.append(spec)
        time.sleep(0.05)

    compiler = FormatCompiler(slow, max_pending=16)
    try:
        spec = _choice("yes", "no")
        await asyncio.gather(*(compiler.check(spec) for _ in range(50)))  # all at once, first time
        await asyncio.gather(*(compiler.check(spec) for _ in range(50)))  # known by now
        assert len(calls) == 1
    finally:
        compiler.shutdown()
