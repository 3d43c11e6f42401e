"""The native sampler gives a distribution for every documented parameter value (issue 11, item 1).

Parameters are drawn over the full ranges the proto documents, as float32 (what
the wire carries), subnormals and range ends included.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.contract import SamplingParams
from engines.native.sampling import RequestSampler

VOCAB = 64


def _sampler(
    params: SamplingParams, *, logprobs: bool = True, prompt: tuple[int, ...] = (1, 2, 3)
) -> RequestSampler:
    return RequestSampler(
        params,
        prompt_token_ids=prompt,
        vocab_size=VOCAB,
        banned_before_min_tokens=(0,),
        min_tokens=0,
        logprobs=logprobs,
        top_logprobs=5 if logprobs else 0,
    )


def _f32(low: float, high: float, *, exclude_min: bool = False) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=32, exclude_min=exclude_min, allow_nan=False)


sampling_params = st.builds(
    SamplingParams,
    temperature=st.none() | _f32(0.0, 100.0),
    top_p=st.none() | _f32(0.0, 1.0, exclude_min=True),
    top_k=st.none() | st.integers(1, VOCAB),
    min_p=st.none() | _f32(0.0, 1.0),
    seed=st.none() | st.integers(0, 2**64 - 1),
    repetition_penalty=st.none() | _f32(0.0, 10.0, exclude_min=True),
    presence_penalty=st.none() | _f32(-2.0, 2.0),
    frequency_penalty=st.none() | _f32(-2.0, 2.0),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    params=sampling_params,
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    seed=st.integers(0, 2**31),
    history=st.lists(st.integers(0, VOCAB - 1), max_size=12),
)
def test_every_documented_value_samples_a_token(
    params: SamplingParams, scale: float, seed: int, history: list[int]
) -> None:
    sampler = _sampler(params)
    for token in history:
        sampler.observe(token)
    logits = torch.randn(VOCAB, generator=torch.Generator().manual_seed(seed)) * scale
    chosen = sampler.choose(logits)
    assert 0 <= chosen.token_id < VOCAB
    assert chosen.logprob is not None and not math.isnan(chosen.logprob.logprob)
    assert all(not math.isnan(t.logprob) for t in chosen.logprob.top)
    verified, _ = sampler.verify(logits, draft=int(torch.argmin(logits)))
    assert 0 <= verified.token_id < VOCAB


def test_a_temperature_below_float_precision_takes_the_top_token() -> None:
    logits = torch.randn(VOCAB, generator=torch.Generator().manual_seed(7)) * 30
    for temperature in (1e-40, 1e-45, 1e-30):
        sampler = _sampler(SamplingParams(temperature=temperature, seed=3))
        assert sampler.choose(logits).token_id == int(torch.argmax(logits))


def test_a_tiny_repetition_penalty_lifts_seen_tokens_without_overflow() -> None:
    logits = torch.full((VOCAB,), -1.0)
    logits[[5, 6, 7]] = torch.tensor([20.0, 25.0, 30.0])
    logits[1] = 0.5  # in the prompt: lifted to 0.5 / 1e-40, above every unseen token
    sampler = _sampler(SamplingParams(temperature=1e-40, repetition_penalty=1e-40, seed=1), prompt=(1, 5, 6))
    # 25 / 1e-40 beats 20 / 1e-40 and 0.5 / 1e-40; 30 is unseen and stays 30.
    assert sampler.choose(logits).token_id == 6
