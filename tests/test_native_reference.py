"""The native engine against transformers on one GGUF file: logits, greedy tokens, tokenizer, template."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import pre_tokenizers

from engines.contract import ChatMessage, EngineRequest, RequestId, SamplingParams, StoppingParams, TokenId
from engines.native.engine import NativeEngine, NativeEngineConfig
from engines.native.kv_cache import KVCache
from engines.native.matrices import QuantizedMatrix, QuantKind, WeightFormat
from engines.native.model import Transformer
from engines.native.tokenizer import NativeTokenizer
from engines.native.weights import default_gguf_path, load_weights

GGUF = default_gguf_path()

CHAT = [ChatMessage("user", "What is the capital of France?")]
PLAIN_PROMPTS = [
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "Le café coûte 3,50 € à Zürich — 日本語も少し。 Once upon a time",
]

TOKENIZER_SAMPLES = [
    "Hello, world!",
    "  leading and trailing spaces  ",
    "line one\nline two\n\n\ttabbed",
    "The year 2024 had 366 days; π ≈ 3.14159.",
    "1234567890",
    "emoji 🎉🚀👍🏽 and more 😀",
    "中文字符和日本語のテキスト、한국어",
    "accents: naïve café résumé Ångström",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after end",
    "mixed<|im_end|>special",
    "   ",
    "",
    "a" * 50,
    "URL: https://example.com/path?q=1&r=2#frag",
    "Ελληνικά και русский текст",
    "don't won't I'm you're we've they'll she'd",
    "x=1+2*3/4-5",
    "\u00a0non-breaking\u2003spaces\u200bzero-width",
]


@pytest.fixture(scope="module")
def hf_model() -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name, dtype=torch.float32)
    return model  # from_pretrained returns it in eval mode already


@pytest.fixture(scope="module")
def hf_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


EXACT_FORMATS = [WeightFormat.Q, WeightFormat.FP32]
"""The weight formats that compute the model exactly (up to the order of additions). Q8ACT's int8
activations are not exact: test_q8act_engine.py bounds how far it moves from Q."""


@pytest.fixture(scope="module", params=EXACT_FORMATS, ids=lambda f: f.value)
def native(request: pytest.FixtureRequest) -> tuple[Transformer, NativeTokenizer]:
    weights = load_weights(GGUF)
    model = Transformer.from_weights(
        weights.config, weights.state_dict, max_seq=1024, weight_format=request.param
    )
    return model, NativeTokenizer(weights.tokenizer)


@pytest.fixture(scope="module", params=EXACT_FORMATS, ids=lambda f: f.value)
def engine(request: pytest.FixtureRequest) -> Iterator[NativeEngine]:
    engine = NativeEngine(NativeEngineConfig(max_batch_size=2, context_length=1024, weights=request.param))
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.shutdown())


def _prompts(tokenizer: NativeTokenizer) -> list[list[TokenId]]:
    chat = tokenizer.render_chat(CHAT)
    return [tokenizer.encode(text) for text in [chat, *PLAIN_PROMPTS]]


def _logits_in_chunks(model: Transformer, ids: list[TokenId], chunk: int) -> torch.Tensor:
    """Every position's logits, the prompt run ``chunk`` tokens per forward pass."""
    cache = KVCache(n_layers=model.config.n_layers, max_slots=1, n_kv_heads=3, max_seq=1024, head_dim=64)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(ids), chunk):
            tokens = torch.tensor([ids[start : start + chunk]])
            parts.append(model(tokens, [0], [start], cache, all_logits=True)[0])
    return torch.cat(parts)


@pytest.mark.parametrize("chunk", [1024, 5, 1])
def test_prompt_logits_match_transformers(
    native: tuple[Transformer, NativeTokenizer], hf_model: Any, chunk: int
) -> None:
    """Whole prompts (the dense path), 5 rows (a verification pass) and 1 row (a decode step):
    with quantized weights the small row counts run the block kernels."""
    model, tokenizer = native
    for ids in _prompts(tokenizer):
        ours = _logits_in_chunks(model, ids, chunk)
        with torch.inference_mode():
            theirs = hf_model(torch.tensor([ids])).logits[0]
        relative = (ours - theirs).norm(dim=-1) / theirs.norm(dim=-1)
        assert relative.max().item() < 1e-3


def test_chunked_prefill_matches_one_pass(native: tuple[Transformer, NativeTokenizer]) -> None:
    model, tokenizer = native
    ids = _prompts(tokenizer)[2]
    cache = KVCache(n_layers=model.config.n_layers, max_slots=2, n_kv_heads=3, max_seq=1024, head_dim=64)
    with torch.inference_mode():
        whole = model(torch.tensor([ids]), [0], [0], cache, all_logits=True)[0]
        first = model(torch.tensor([ids[:7]]), [1], [0], cache, all_logits=True)[0]
        rest = model(torch.tensor([ids[7:]]), [1], [7], cache, all_logits=True)[0]
    chunked = torch.cat([first, rest])
    assert ((chunked - whole).norm(dim=-1) / whole.norm(dim=-1)).max().item() < 1e-4


async def _greedy(engine: NativeEngine, ids: list[TokenId], max_tokens: int) -> list[TokenId]:
    request = EngineRequest(
        RequestId(f"greedy-{len(ids)}"),
        tuple(ids),
        SamplingParams(temperature=0.0),
        StoppingParams(max_tokens=max_tokens),
    )
    tokens: list[TokenId] = []
    async for output in engine.generate(request):
        tokens.extend(output.token_ids)
    return tokens


def test_greedy_generation_matches_transformers(engine: NativeEngine, hf_model: Any) -> None:
    tokenizer = engine.tokenizer
    eos = sorted(tokenizer.eos_token_ids)
    for ids in _prompts(tokenizer):
        ours = asyncio.run(_greedy(engine, ids, 24))
        with torch.inference_mode():
            generated = hf_model.generate(
                torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=eos, pad_token_id=2
            )[0, len(ids) :].tolist()
        # transformers keeps the EOS token it stopped on; the engine reports it as the finish reason.
        if generated and generated[-1] in eos:
            generated = generated[:-1]
        assert ours == generated


def test_tokenizer_matches_transformers(
    native: tuple[Transformer, NativeTokenizer], hf_tokenizer: Any
) -> None:
    _, tokenizer = native
    for text in TOKENIZER_SAMPLES:
        if not any(ch.isdigit() for ch in text):
            assert tokenizer.encode(text) == hf_tokenizer.encode(text), text
    # transformers' GGUF loader omits the "smollm" pre-tokenizer's digit split (SmolLM2's
    # own tokenizer.json has it); with that step restored the two agree on every sample.
    hf_tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    for text in TOKENIZER_SAMPLES:
        ids = tokenizer.encode(text)
        assert ids == hf_tokenizer.encode(text), text
        assert tokenizer.decode(ids, skip_special_tokens=False) == text
        assert tokenizer.decode(ids) == hf_tokenizer.decode(ids, skip_special_tokens=True)


def test_digits_are_split_one_by_one(native: tuple[Transformer, NativeTokenizer]) -> None:
    _, tokenizer = native
    assert [tokenizer.decode([i]) for i in tokenizer.encode("2024")] == ["2", "0", "2", "4"]


def test_special_tokens(native: tuple[Transformer, NativeTokenizer]) -> None:
    _, tokenizer = native
    assert tokenizer.encode("<|im_start|>user") == [1, *tokenizer.encode("user")]
    assert tokenizer.decode([1, *tokenizer.encode("hi"), 2]) == "hi"
    assert tokenizer.eos_token_ids == frozenset({0, 2})
    assert tokenizer.vocab_size == 49152
    party = tokenizer.encode("🎉")
    assert len(party) > 1 and tokenizer.decode(party[:1]) == "\ufffd"  # incomplete UTF-8


def test_render_chat_errors(native: tuple[Transformer, NativeTokenizer]) -> None:
    _, tokenizer = native
    data = load_weights(GGUF).tokenizer
    with pytest.raises(ValueError, match="no chat template"):
        NativeTokenizer(replace(data, chat_template=None)).render_chat(CHAT)
    rejecting = replace(data, chat_template="{{ raise_exception('roles must alternate') }}")
    with pytest.raises(ValueError, match="roles must alternate"):
        NativeTokenizer(rejecting).render_chat(CHAT)
    with pytest.raises(ValueError, match="Expected"):
        NativeTokenizer(replace(data, chat_template="{% for %}")).render_chat(CHAT)
    assert tokenizer.has_chat_template


def test_chat_template_matches_transformers(
    native: tuple[Transformer, NativeTokenizer], hf_tokenizer: Any
) -> None:
    _, tokenizer = native
    conversations = [
        CHAT,
        [ChatMessage("system", "Be terse."), ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello.")],
        [ChatMessage("user", "Ünïcödé? 日本")],
    ]
    for messages in conversations:
        as_dicts = [{"role": m.role, "content": m.content} for m in messages]
        for add_prompt in (True, False):
            expected = hf_tokenizer.apply_chat_template(
                as_dicts, tokenize=False, add_generation_prompt=add_prompt
            )
            assert tokenizer.render_chat(messages, add_generation_prompt=add_prompt) == expected


def test_weights_cache_round_trip(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    first = load_weights(GGUF, tmp_path, lambda done, total: seen.append((done, total)))
    second = load_weights(GGUF, tmp_path)
    assert not first.from_cache and second.from_cache
    assert seen[-1] == (seen[-1][1], seen[-1][1])
    assert first.config == second.config and first.tokenizer == second.tokenizer
    assert first.state_dict.keys() == second.state_dict.keys()
    for name, weight in first.state_dict.items():
        again = second.state_dict[name]
        if isinstance(weight, QuantizedMatrix):
            assert isinstance(again, QuantizedMatrix), name
            assert (weight.kind, weight.rows, weight.cols) == (again.kind, again.rows, again.cols), name
            assert torch.equal(weight.qs, again.qs) and torch.equal(weight.scales, again.scales), name
        else:
            assert isinstance(again, torch.Tensor) and torch.equal(weight, again), name
    kinds = {w.kind for w in first.state_dict.values() if isinstance(w, QuantizedMatrix)}
    assert kinds == {QuantKind.Q4_1, QuantKind.Q8_0}  # SmolLM2's GGUF: layers Q4_1, embeddings Q8_0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
