"""Incremental detokenization: token ids in, text deltas out.

An engine hands the service new token ids a few at a time; the client wants
text. Decoding each token on its own is wrong (a character may be split across
byte-level tokens, and SentencePiece-style decoders drop the leading space of a
sequence's first token), and decoding the whole output every time costs
O(output length) per step. ``IncrementalDetokenizer`` decodes only a short
window of recent ids and emits the part of its text that can no longer change.

How it works: the window ``ids`` is decoded as a whole. Its first ``read``
ids are context whose text was already sent (they keep merges and leading
spaces right for what follows), and ``emitted`` counts the characters of the
window's text already sent. After a push the window is decoded and the text
up to its trailing U+FFFD (if any) is sent. When the text ends on a complete
character, the context ids are dropped and the ids up to the end become the
new context: the window holds about two pushes' worth of ids and a push costs
two decodes of it, whatever the length of the output.

An incomplete character decodes to U+FFFD, and its at most three bytes lie in
the last few ids: so the trailing U+FFFD run is held back, and the last few
boundaries are decoded to find the latest one that ends on a complete
character (byte-fallback decoders show a whole run of byte tokens as U+FFFD
until its last character is complete, so that boundary may release more text).
Text may also legitimately end in U+FFFD (the model produced the character
itself, or bytes that never form a character): once more than
``_MAX_PENDING_TOKENS`` ids have passed with no such boundary, the window is
cut at an earlier boundary that verifiably splits no character, and the text
before it is sent as final, so neither text nor memory is held without bound.
``flush`` sends everything left.

Guarantee: the concatenation of all deltas (flush included) equals
``tokenizer.decode(output_ids, skip_special_tokens=True)``, as long as the
decoder is prefix-stable at character boundaries: decoding more ids never
changes text already complete. True for byte-level BPE and for SentencePiece
with byte fallback on valid UTF-8; not for decoders that clean up spaces
before punctuation, nor for byte fallback when a run of byte tokens is invalid
UTF-8 (it then turns every byte of the run, complete characters sent earlier
included, into U+FFFD) and, when prompt ids
seed the window, the decoder does not treat the start of a sequence specially:
with a SentencePiece decoder that strips the first token's leading space, the
seeded output keeps the space the prompt context implies, which is what a
reader of prompt + output expects.

With stop strings, push the ids of a multi-token delta one at a time so a
match maps to the token that completed it (see ``service.stop_strings``).

A byte-level BPE tokenizer that gives its ``byte_pieces`` (checked when it was
built: ``engines.byte_level``) takes a shorter road with the same guarantee,
exactly: each push joins its ids' bytes and hands them to Python's incremental
UTF-8 decoder, which holds back an incomplete character's bytes and replaces
invalid ones as a whole decode would. No window, no ``decode`` call.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from engines.contract import Tokenizer

_REPLACEMENT = "\ufffd"

_PROMPT_CONTEXT_TOKENS = 4
"""Prompt ids that seed the window, for the leading space of the first output token."""

_MAX_PENDING_TOKENS = 8
"""Ids after ``read`` beyond which the window is cut even though its text ends in U+FFFD."""

_INCOMPLETE_TAIL_TOKENS = 4
"""Ids at the end that may hold an incomplete character (three bytes, plus one empty id)."""

_CUT_TRIES = 8
"""Boundaries tried, walking back from the tail, when cutting the window."""


class IncrementalDetokenizer:
    """Turns one generation's output ids into text deltas that are always valid text.

    ``prompt_token_ids``, when given, seed the decoding context (their text is
    never emitted). Feed ``push`` the new ids of each engine output, in order,
    then call ``flush`` once at the end.
    """

    def __init__(self, tokenizer: Tokenizer, prompt_token_ids: Sequence[int] | None = None) -> None:
        self._tokenizer = tokenizer
        pieces = tokenizer.byte_pieces
        self._pieces: Sequence[bytes] = pieces or ()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace") if pieces is not None else None
        if pieces is not None:
            prompt_token_ids = None  # a byte-level token's text never depends on its neighbours
        seed = list(prompt_token_ids[-_PROMPT_CONTEXT_TOKENS:]) if prompt_token_ids else []
        seed_text = self._decode(seed)
        if seed_text.endswith(_REPLACEMENT):
            # The prompt ends inside a character: the output's own decode starts with
            # its stray continuation bytes, and seeding would merge them instead.
            seed, seed_text = [], ""
        self._ids: list[int] = seed
        self._read = len(seed)
        self._emitted = len(seed_text)

    @property
    def window_size(self) -> int:
        """Ids held in memory now (bounded by about two pushes, whatever the output length)."""
        return len(self._ids)

    def push(self, token_ids: Sequence[int]) -> str:
        """The text that ``token_ids`` (the next output ids, any number) complete; may be empty."""
        if not token_ids:
            return ""
        if self._utf8 is not None:
            pieces = self._pieces
            return self._utf8.decode(b"".join([pieces[i] for i in token_ids]))
        self._ids.extend(token_ids)
        text = self._decode(self._ids)
        if not text.endswith(_REPLACEMENT):
            delta = self._emit_up_to(text, len(text))
            self._advance(len(self._ids))
            return delta
        # The trailing U+FFFD may be an incomplete character, whose bytes lie in the
        # last few ids: send what precedes it, and look for the last boundary among
        # those ids where the text ends on a complete character.
        delta = self._emit_up_to(text, len(text.rstrip(_REPLACEMENT)))
        end = len(self._ids)
        for boundary in range(end - 1, max(self._read, end - 1 - _INCOMPLETE_TAIL_TOKENS), -1):
            head = self._decode(self._ids[:boundary])
            if not head.endswith(_REPLACEMENT):
                # Byte-fallback decoders show a whole run of byte tokens as U+FFFD while
                # its end is incomplete, so ``head`` may hold characters ``text`` does not.
                delta += self._emit_up_to(head, len(head))
                self._advance(boundary, beyond=self._emitted - len(head))
                return delta
        if end - self._read > _MAX_PENDING_TOKENS:
            delta += self._cut(text)
        return delta

    def flush(self) -> str:
        """Everything not yet emitted, incomplete characters included (as U+FFFD). Call once, last."""
        if self._utf8 is not None:
            return self._utf8.decode(b"", final=True)
        text = self._decode(self._ids)
        delta = self._emit_up_to(text, len(text))
        self._advance(len(self._ids))
        return delta

    def _decode(self, token_ids: Sequence[int]) -> str:
        if not token_ids:
            return ""
        return self._tokenizer.decode(token_ids, skip_special_tokens=True)

    def _emit_up_to(self, text: str, end: int) -> str:
        if end <= self._emitted:
            return ""
        delta = text[self._emitted : end]
        self._emitted = end
        return delta

    def _advance(self, read: int, beyond: int = 0) -> None:
        """The text of the ids before ``read`` is out and ends on a complete character: slide.

        The ids after the old context, up to ``read``, become the new context;
        ``beyond`` characters of the text after them were already sent too.
        """
        del self._ids[: self._read]
        self._read = read - self._read
        self._emitted = len(self._decode(self._ids[: self._read])) + beyond

    def _cut(self, text: str) -> str:
        """Drop ids that can no longer change the text although it ends in U+FFFD.

        No boundary among the last few ids ends on a complete character, so the
        U+FFFD before them is real (the model's own, or bytes that are never
        completed). An earlier boundary ``cut`` is safe when decoding the two
        sides apart gives the same text as decoding them together (so no
        character, and no leading space, straddles it). The text before ``cut``
        is then final: it is emitted, and the window restarts at ``cut``.
        """
        end = len(self._ids) - _INCOMPLETE_TAIL_TOKENS
        for cut in range(end, max(self._read, end - _CUT_TRIES), -1):
            before = self._decode(self._ids[:cut])
            if before + self._decode(self._ids[cut:]) != text:
                continue
            delta = self._emit_up_to(text, len(before))
            self._emitted -= len(before)
            del self._ids[:cut]
            self._read = 0
            return delta
        return ""
