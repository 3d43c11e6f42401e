"""engines/native/steps.py: the target's steps run on a model and a cache alone, with no
scheduler or thread, and verification emits exactly what one-token steps would have."""

from __future__ import annotations

import pytest
import torch

from engines.contract import (
    EngineRequest,
    FinishReason,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    TokenId,
)
from engines.native import steps
from engines.native.kv_cache import KVCache
from engines.native.matrices import WeightFormat
from engines.native.model import Transformer
from engines.native.request_state import RequestState
from tests.tiny_model import CONFIG, EOS, PROMPT, random_weights

LAYERS = (0, 1, 2)


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer.from_weights(CONFIG, random_weights(CONFIG), CONFIG.context_length, WeightFormat.FP32)


def _cache() -> KVCache:
    c = CONFIG
    return KVCache(
        n_layers=c.n_layers,
        max_slots=2,
        n_kv_heads=c.n_kv_heads,
        max_seq=c.context_length,
        head_dim=c.head_dim,
    )


def _state(slot: int, max_tokens: int = 16) -> RequestState:
    request = EngineRequest(
        request_id=RequestId(f"r{slot}"),
        prompt_token_ids=PROMPT,
        sampling=SamplingParams(temperature=0.0),
        # ignore_eos: a random model may well pick the EOS id.
        stopping=StoppingParams(max_tokens=max_tokens, ignore_eos=True),
    )
    state = RequestState.submitted(
        request,
        eos_token_ids=EOS,
        vocab_size=CONFIG.vocab_size,
        context_length=CONFIG.context_length,
        speculation=SpeculationParams(SpeculationMethod.OFF, 0),
        now=0.0,
    )
    state.slot = slot
    return state


def _prefill(model: Transformer, cache: KVCache, state: RequestState, chunk: int) -> list[steps.Step]:
    done: list[steps.Step] = []
    while state.prefilled < state.prompt_len:
        n_tokens = min(chunk, state.prompt_len - state.prefilled)
        done.append(steps.prefill_chunk(model, cache, state, n_tokens, LAYERS))
    return done


@torch.inference_mode()
def test_verify_emits_what_one_token_steps_would(model: Transformer) -> None:
    cache = _cache()
    plain = _state(0)
    chunks = _prefill(model, cache, plain, chunk=4)
    assert [c.emitted is None for c in chunks] == [True, False]
    assert [c.features.shape if c.features is not None else None for c in chunks] == [
        (4, 3 * CONFIG.dim),
        (3, 3 * CONFIG.dim),
    ]
    for _ in range(5):
        [step] = steps.decode(model, cache, [plain], None)
        assert step.emitted is not None and len(step.emitted.tokens) == 1 and step.features is None
    expected = list(plain.output)
    assert len(expected) == 6

    speculating = _state(1)
    _prefill(model, cache, speculating, chunk=len(PROMPT))
    assert speculating.output == expected[:1]
    # Three right drafts: all accepted, and the last position gives a bonus token.
    step = steps.verify(model, cache, speculating, expected[1:4], LAYERS)
    assert step.emitted is not None and step.emitted.tokens == tuple(expected[1:5])
    assert step.features is not None and step.features.shape == (4, 3 * CONFIG.dim)
    # A wrong draft: the target's own token replaces it; only the last token's features are kept.
    wrong = TokenId((expected[5] + 1) % CONFIG.vocab_size)
    step = steps.verify(model, cache, speculating, [wrong], LAYERS)
    assert step.emitted is not None and step.emitted.tokens == (expected[5],)
    assert step.features is not None and step.features.shape == (1, 3 * CONFIG.dim)
    assert speculating.output == expected
    progress = speculating.progress
    assert (progress.decode_steps, progress.draft_tokens, progress.accepted_draft_tokens) == (3, 4, 3)


@torch.inference_mode()
def test_a_step_ends_the_request_at_its_limit(model: Transformer) -> None:
    cache = _cache()
    state = _state(0, max_tokens=3)
    _prefill(model, cache, state, chunk=len(PROMPT))
    [step] = steps.decode(model, cache, [state], None)
    assert step.emitted is not None and step.emitted.reason is None
    # Two drafts would pass the limit: the run stops at it, whatever was proposed after.
    step = steps.verify(model, cache, state, [TokenId(1), TokenId(2)], None)
    assert step.emitted is not None and step.emitted.reason is FinishReason.LENGTH
    assert len(state.output) == 3 and step.features is None
