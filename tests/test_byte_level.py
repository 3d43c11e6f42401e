"""engines.byte_level: each token's bytes, trusted only once the tokenizer's own decode agrees."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest

from engines.byte_level import byte_pieces, piece_of
from engines.sim.config import SimEngineConfig
from engines.sim.engine import load_tokenizer
from service.detokenize import IncrementalDetokenizer
from tests.tokenizer_fixtures import TEXTS, SentencePieceStyle, smollm2_hf, smollm2_tokenizer

REPLACEMENT = "\ufffd"


def test_the_byte_symbols_spell_every_byte_once() -> None:
    assert piece_of("Ġhello") == b" hello"
    assert piece_of("ĊĊ") == b"\n\n"
    assert piece_of("Ã©") == "é".encode()
    # An added token written in plain text (not only byte symbols) stands for its UTF-8.
    assert piece_of("<tool_call>") == b"<tool_call>"
    assert piece_of("日本") == "日本".encode()
    symbols = {chr(c) for c in range(0x21, 0x7F)} | {chr(c) for c in range(0xA1, 0x100) if c != 0xAD}
    symbols |= {chr(0x100 + n) for n in range(68)}
    assert len(symbols) == 256
    assert sorted(piece_of(s)[0] for s in symbols) == list(range(256))


Decode = Callable[[list[int]], str]
DecodeEach = Callable[[list[int]], list[str]]
Encode = Callable[[str], list[int]]


def _cleaned_up(text: str) -> str:
    """What a decoder that cleans up tokenization spaces does (older transformers' default)."""
    for spaced, joined in (
        (" .", "."),
        (" ,", ","),
        (" 's", "'s"),
        (" n't", "n't"),
        (" !", "!"),
        (" ?", "?"),
    ):
        text = text.replace(spaced, joined)
    return text


def _hf_inputs(cleanup: bool = False) -> tuple[list[str | None], set[int], Decode, DecodeEach, Encode]:
    hf = smollm2_hf()
    vocab: list[str | None] = [None] * len(hf)
    for token, index in hf.get_vocab().items():
        vocab[index] = token
    special = {*hf.all_special_ids, *(i for i, t in hf.added_tokens_decoder.items() if t.special)}

    def decode(ids: list[int]) -> str:
        text = str(hf.decode(ids, skip_special_tokens=True))
        return _cleaned_up(text) if cleanup else text

    def decode_each(ids: list[int]) -> list[str]:
        return [str(t) for t in hf.batch_decode([[i] for i in ids], skip_special_tokens=True)]

    def encode(text: str) -> list[int]:
        return [int(i) for i in hf.encode(text, add_special_tokens=False)]

    return vocab, special, decode, decode_each, encode


def _random_sequences(vocab_size: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    # Byte tokens (ids 0-300 hold the single bytes) make invalid and split UTF-8 likely.
    return [
        [rng.randrange(vocab_size if rng.random() < 0.5 else 300) for _ in range(rng.randint(1, 40))]
        for _ in range(500)
    ]


def _text(pieces: Sequence[bytes], ids: Sequence[int]) -> str:
    return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")


def test_the_native_tokenizer_decodes_as_its_pieces_say() -> None:
    tokenizer = load_tokenizer(SimEngineConfig())
    pieces = tokenizer.byte_pieces
    assert pieces is not None and len(pieces) == tokenizer.vocab_size
    for ids in _random_sequences(tokenizer.vocab_size, 7):
        assert _text(pieces, ids) == tokenizer.decode(ids)
    for text in TEXTS.values():
        assert _text(pieces, tokenizer.encode(text, add_special_tokens=False)) == text


def test_a_transformers_tokenizer_decodes_as_its_pieces_say() -> None:
    """What the TensorRT-LLM engine's tokenizer derives, on SmolLM2 loaded by transformers."""
    vocab, special, decode, decode_each, encode = _hf_inputs()
    pieces = byte_pieces(vocab, special, decode, decode_each, encode)
    assert pieces is not None
    hf = smollm2_hf()
    for ids in _random_sequences(len(vocab), 8):
        assert _text(pieces, ids) == hf.decode(ids, skip_special_tokens=True)


def test_a_decoder_that_cleans_up_spaces_gets_no_pieces() -> None:
    """A cleanup step turns " 's" into "'s" across tokens: not byte-level, though every token alone
    decodes as its piece (only the sequences show it)."""
    vocab, special, decode, decode_each, encode = _hf_inputs(cleanup=True)
    assert byte_pieces(vocab, special, decode, decode_each, encode) is None


def test_special_tokens_not_skipped_by_the_caller_are_refused() -> None:
    """Told the wrong skip set, the per-token check disagrees with decode: no pieces."""
    vocab, _, decode, decode_each, encode = _hf_inputs()
    assert byte_pieces(vocab, set(), decode, decode_each, encode) is None


def test_a_sentencepiece_style_tokenizer_gets_no_pieces() -> None:
    sp = SentencePieceStyle()
    assert (
        byte_pieces(
            list(sp.PIECES),
            {0},
            sp.decode,
            lambda ids: [sp.decode([i]) for i in ids],
            lambda text: [1, 2],
        )
        is None
    )


def test_a_vocabulary_with_holes_gets_no_pieces() -> None:
    vocab, special, decode, decode_each, encode = _hf_inputs()
    holes = [*vocab, None]
    assert byte_pieces(holes, special, decode, decode_each, encode) is None


@pytest.mark.parametrize("chunk", [1, 4])
def test_byte_level_detokenization_makes_no_decode_calls(chunk: int) -> None:
    tokenizer = smollm2_tokenizer(byte_level=True)
    ids = tokenizer.encode(TEXTS["mixed"] * 3, add_special_tokens=False)
    before = tokenizer.decode_calls
    detok = IncrementalDetokenizer(tokenizer, tokenizer.encode("Say hi.", add_special_tokens=True))
    text = "".join(detok.push(ids[i : i + chunk]) for i in range(0, len(ids), chunk)) + detok.flush()
    assert tokenizer.decode_calls == before
    assert text == TEXTS["mixed"] * 3
    assert REPLACEMENT not in text
