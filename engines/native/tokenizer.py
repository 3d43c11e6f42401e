"""The model's own tokenizer (byte-level BPE from GGUF vocab and merges) and chat template."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from engines.byte_level import byte_pieces
from engines.contract import ChatMessage, TokenId

# GGUF token_type values (llama.cpp's llama_token_type).
_TOKEN_TYPE_CONTROL = 3
_TOKEN_TYPE_USER_DEFINED = 4

_END_OF_TEXT = "<|endoftext|>"
_GIL_FREE_CHARS = 4096
"""Longer texts are tokenized by the calls that release the GIL (see ``NativeTokenizer.encode``)."""


@dataclass(frozen=True, slots=True)
class TokenizerData:
    """What a tokenizer needs, in a form that round-trips through the weights cache."""

    tokenizer_json: str
    """A ``tokenizers`` library tokenizer, serialized."""
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int
    add_bos_token: bool


def _pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    """The pre-tokenizer llama.cpp's ``tokenizer.ggml.pre`` name stands for.

    "smollm" (like "starcoder") splits every digit on its own before the GPT-2
    regex; SmolLM2's original tokenizer.json says the same (Digits with
    individual_digits, then ByteLevel without prefix space). transformers'
    GGUF loader drops the Digits step, so it splits "2024" differently from
    the model's training tokenizer.
    """
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder", "refact"):
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in ("default", "gpt2"):
        return byte_level
    raise ValueError(f"unsupported GGUF pre-tokenizer {pre!r}")


def build_tokenizer_json(
    *, tokens: Sequence[str], token_types: Sequence[int], merges: Sequence[str], pre: str
) -> str:
    """Serialize a ``tokenizers`` tokenizer for a GGUF ``gpt2`` (byte-level BPE) vocabulary."""
    vocab = {token: index for index, token in enumerate(tokens)}
    pairs = [(left, right) for left, right in (merge.split(" ", 1) for merge in merges)]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(pre)
    tokenizer.decoder = decoders.ByteLevel()
    special = [
        AddedToken(tokens[i], special=True, normalized=False)
        for i, kind in enumerate(token_types)
        if kind == _TOKEN_TYPE_CONTROL
    ]
    user = [
        AddedToken(tokens[i], special=False, normalized=False)
        for i, kind in enumerate(token_types)
        if kind == _TOKEN_TYPE_USER_DEFINED
    ]
    tokenizer.add_special_tokens(special)
    tokenizer.add_tokens(user)
    return tokenizer.to_str()


def _raise_exception(message: str) -> NoReturn:
    # Chat templates call raise_exception(...) to reject message lists.
    raise jinja2.TemplateError(message)


class NativeTokenizer:
    """Implements ``engines.contract.Tokenizer`` for GGUF byte-level BPE models."""

    def __init__(self, data: TokenizerData) -> None:
        self.tokenizer_json = data.tokenizer_json
        """The Hugging Face ``tokenizer.json`` it was built from (what llguidance reads)."""
        self._tokenizer = Tokenizer.from_str(data.tokenizer_json)
        if data.add_bos_token and data.bos_token_id is not None:
            bos = self._tokenizer.id_to_token(data.bos_token_id)
            self._tokenizer.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, data.bos_token_id)]
            )
        added = self._tokenizer.get_added_tokens_decoder()
        self._special_ids = frozenset(index for index, token in added.items() if token.special)
        eos = {TokenId(data.eos_token_id)}
        # generation_config of this GGUF names only <|im_end|> (id 2), which ends a chat
        # turn. <|endoftext|> ends a document; a model prompted with plain text emits it,
        # and anything after it is an unrelated new document, so it stops generation too.
        end_of_text = self._tokenizer.token_to_id(_END_OF_TEXT)
        if end_of_text is not None and end_of_text in self._special_ids:
            eos.add(TokenId(end_of_text))
        self._eos = frozenset(eos)
        self._bos_token = self._token_text(data.bos_token_id)
        self._eos_token = self._token_text(data.eos_token_id)
        # Decoded one by one (~0.1 s): here, at engine start, not on a request's path.
        self._max_token_bytes = max(
            1,
            *(
                len(self._tokenizer.decode([i], skip_special_tokens=False).encode("utf-8"))
                for i in range(self.vocab_size)
            ),
        )
        rust = self._tokenizer
        self._byte_pieces = byte_pieces(
            [rust.id_to_token(i) for i in range(self.vocab_size)],
            self._special_ids,
            lambda ids: str(rust.decode(ids, skip_special_tokens=True)),
            lambda ids: [
                str(text) for text in rust.decode_batch([[i] for i in ids], skip_special_tokens=True)
            ],
            lambda text: list(rust.encode(text, add_special_tokens=False).ids),
        )
        self._template: jinja2.Template | None = None
        self._template_error: str | None = None
        if data.chat_template:
            env = ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
            )
            env.globals["raise_exception"] = _raise_exception
            env.filters["tojson"] = _tojson
            try:
                self._template = env.from_string(data.chat_template)
            except jinja2.TemplateError as error:
                self._template_error = str(error)

    def _token_text(self, token_id: int | None) -> str:
        if token_id is None:
            return ""
        return self._tokenizer.id_to_token(token_id) or ""

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    @property
    def eos_token_ids(self) -> frozenset[TokenId]:
        """Tokens that end generation (unless a request sets ``ignore_eos``)."""
        return self._eos

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Control tokens (``<|im_start|>`` etc.), skipped by ``decode`` by default."""
        return self._special_ids

    @property
    def has_chat_template(self) -> bool:
        """Whether ``render_chat`` can work at all."""
        return self._template is not None

    @property
    def max_token_bytes(self) -> int:
        """The longest token's text in UTF-8 bytes (measured once, when the tokenizer is built)."""
        return self._max_token_bytes

    @property
    def byte_pieces(self) -> Sequence[bytes] | None:
        """Each id's bytes (``engines.byte_level``), verified when the tokenizer was built."""
        return self._byte_pieces

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[TokenId]:
        """Token ids of ``text``. Special-token text such as ``<|im_start|>`` maps to its id."""
        if len(text) <= _GIL_FREE_CHARS:
            ids = self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
        else:
            # ``encode`` holds the GIL throughout (~0.35 s for 600 KB here: every other thread of
            # the process, the event loop included, waits); ``encode_batch`` releases it while the
            # Rust side works, and gives the same ids.
            [encoding] = self._tokenizer.encode_batch([text], add_special_tokens=add_special_tokens)
            ids = encoding.ids
        return [TokenId(i) for i in ids]

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``token_ids``; incomplete UTF-8 decodes to U+FFFD."""
        ids = list(token_ids)
        if len(ids) <= _GIL_FREE_CHARS // 4:
            return str(self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))
        # As ``encode``: the batch call releases the GIL while it works.
        [text] = self._tokenizer.decode_batch([ids], skip_special_tokens=skip_special_tokens)
        return str(text)

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` in the model's chat template.

        Raises ``ValueError`` when the model has no (valid) template or the
        template rejects the messages.
        """
        if self._template is None:
            raise ValueError(self._template_error or "the model has no chat template")
        try:
            return self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
            )
        except jinja2.TemplateError as error:
            raise ValueError(f"chat template failed: {error}") from error


def _tojson(value: Any, indent: int | None = None) -> str:
    # Templates use tojson for tool schemas; jinja's own escapes HTML, which prompts must not.
    return json.dumps(value, ensure_ascii=False, indent=indent)
