"""Byte-level BPE: each token stands for a fixed string of bytes, so text needs no decode calls.

In a byte-level BPE vocabulary (GPT-2's scheme, used by SmolLM2, Llama 3 and 4,
Qwen and many more) every byte is spelled by one printable character, and a
token's vocabulary string spells its bytes. Decoding a sequence is then the
UTF-8 decoding of the concatenation of its tokens' bytes (invalid bytes as
U+FFFD; special tokens skipped). ``byte_pieces`` derives each token's bytes and
checks that claim against the tokenizer's own ``decode`` before anyone relies
on it: every token alone, then sequences of random tokens and a probe text
whose decoding a cleanup step (" ." to ".", " n't" to "n't") would change. A
tokenizer that fails any check gets None, and callers use ``decode``.

Incremental detokenization (``service.detokenize``) uses the pieces with
Python's incremental UTF-8 decoder: exact, and far cheaper than decoding a
window of ids at every step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

_PROBE_TEXT = "Hello, world . It 's 3 ; don't — n't ? ! « ok » 日本語 😀 \t\n  x"
_RANDOM_SEQUENCES = 256
_RANDOM_LENGTH = 12


def _byte_symbols() -> dict[str, int]:
    """The character that spells each byte in a byte-level BPE vocabulary, mapped to the byte.

    Printable Latin-1 bytes spell themselves; the other 68 (controls, space,
    DEL, NBSP, soft hyphen) take the characters from U+0100 on, in byte order.
    """
    spelled_as_self = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols = {chr(byte): byte for byte in spelled_as_self}
    extra = 0
    for byte in range(256):
        if byte not in spelled_as_self:
            symbols[chr(0x100 + extra)] = byte
            extra += 1
    return symbols


_SYMBOLS = _byte_symbols()


def piece_of(token: str) -> bytes:
    """The bytes ``token`` (a vocabulary string) stands for.

    A string made only of byte symbols spells its bytes; any other string (an
    added token such as ``<tool_call>`` written in plain text) stands for its
    own UTF-8.
    """
    try:
        return bytes(_SYMBOLS[char] for char in token)
    except KeyError:
        return token.encode("utf-8")


def byte_pieces(
    tokens: Sequence[str | None],
    skipped: Iterable[int],
    decode: Callable[[list[int]], str],
    decode_each: Callable[[list[int]], list[str]],
    encode: Callable[[str], list[int]],
) -> tuple[bytes, ...] | None:
    """Each id's bytes, or None unless the tokenizer verifiably decodes that way.

    ``tokens``: the vocabulary string of each id (None for an id with none);
    ``skipped``: the ids ``decode`` skips (special tokens); ``decode``: the
    tokenizer's decode of a sequence, special tokens skipped; ``decode_each``:
    each id decoded alone (a batch call, for speed); ``encode``: text to ids.
    """
    skip = frozenset(skipped)
    if any(token is None for index, token in enumerate(tokens) if index not in skip):
        return None
    pieces = tuple(
        b"" if index in skip or token is None else piece_of(token) for index, token in enumerate(tokens)
    )

    def text_of(ids: Sequence[int]) -> str:
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    ids = list(range(len(pieces)))
    if decode_each(ids) != [text_of((i,)) for i in ids]:
        return None
    rng = random.Random(len(pieces))
    samples = [encode(_PROBE_TEXT)]
    samples += [rng.choices(ids, k=rng.randint(2, _RANDOM_LENGTH)) for _ in range(_RANDOM_SEQUENCES)]
    if any(decode(sample) != text_of(sample) for sample in samples):
        return None
    return pieces
