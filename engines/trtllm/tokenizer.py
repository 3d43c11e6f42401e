"""The model's Hugging Face tokenizer (the one TensorRT-LLM itself loads) behind our ``Tokenizer`` Protocol.

``transformers`` is imported lazily: it is in every TensorRT-LLM container,
and nothing here should cost an import where this engine is not chosen.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from engines.byte_level import byte_pieces
from engines.contract import ChatMessage, TokenId


class HfTokenizer(Protocol):
    """The part of ``transformers.PreTrainedTokenizerBase`` we use."""

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def chat_template(self) -> str | None: ...

    def __len__(self) -> int: ...

    def get_vocab(self) -> dict[str, int]: ...

    @property
    def all_special_ids(self) -> list[int]: ...

    @property
    def added_tokens_decoder(self) -> Mapping[int, AddedToken]: ...

    def batch_decode(self, sequences: list[list[int]], *, skip_special_tokens: bool) -> list[str]: ...

    def encode(self, text: str, *, add_special_tokens: bool) -> list[int]: ...

    def decode(self, token_ids: list[int], *, skip_special_tokens: bool) -> str: ...

    def apply_chat_template(
        self, conversation: list[dict[str, str]], *, tokenize: bool, add_generation_prompt: bool
    ) -> str: ...


class AddedToken(Protocol):
    """The part of ``tokenizers.AddedToken`` we use."""

    @property
    def special(self) -> bool: ...


def special_added_ids(tokenizer: HfTokenizer) -> list[int]:
    """Added tokens marked special: ``decode(skip_special_tokens=True)`` skips them too."""
    return [index for index, token in tokenizer.added_tokens_decoder.items() if token.special]


class TrtLlmTokenizer:
    """Implements ``engines.contract.Tokenizer`` over a Hugging Face tokenizer."""

    def __init__(self, tokenizer: HfTokenizer, *, extra_eos_token_ids: Sequence[int] = ()) -> None:
        self._tokenizer = tokenizer
        main = tokenizer.eos_token_id
        self._end_id = None if main is None else TokenId(main)
        ids = {TokenId(i) for i in extra_eos_token_ids}
        if self._end_id is not None:
            ids.add(self._end_id)
        self._eos = frozenset(ids)
        # Checked here, off the event loop (a 200k vocabulary takes seconds), once.
        vocab: list[str | None] = [None] * len(tokenizer)
        for token, index in tokenizer.get_vocab().items():
            if 0 <= index < len(vocab):
                vocab[index] = token
        self._byte_pieces = byte_pieces(
            vocab,
            {*tokenizer.all_special_ids, *special_added_ids(tokenizer)},
            lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True)),
            lambda ids: [
                str(t) for t in tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=True)
            ],
            lambda text: [int(i) for i in tokenizer.encode(text, add_special_tokens=False)],
        )

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included."""
        return len(self._tokenizer)

    @property
    def eos_token_ids(self) -> frozenset[TokenId]:
        """The tokenizer's EOS plus those of ``generation_config.json``."""
        return self._eos

    @property
    def end_id(self) -> TokenId | None:
        """The tokenizer's own EOS: what TensorRT-LLM uses as ``end_id`` by default."""
        return self._end_id

    @property
    def has_chat_template(self) -> bool:
        """Whether ``render_chat`` can work at all."""
        return bool(self._tokenizer.chat_template)

    @functools.cached_property
    def max_token_bytes(self) -> int:
        """An upper bound on one token's text in UTF-8 bytes: its vocabulary string's UTF-8 length.

        A byte-level BPE string spells each byte with one character of at most 2 UTF-8 bytes, and
        a SentencePiece piece is its text (with "▁" for a space): never shorter than the text.
        """
        return max(1, *(len(token.encode("utf-8")) for token in self._tokenizer.get_vocab()))

    @property
    def byte_pieces(self) -> Sequence[bytes] | None:
        """Each id's bytes for a byte-level BPE vocabulary that decodes exactly so (``engines.byte_level``):
        Llama 3 and 4, Qwen, GPT-2 style. None otherwise (SentencePiece, cleanup of spaces)."""
        return self._byte_pieces

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[TokenId]:
        """Token ids of ``text``; ``add_special_tokens`` adds BOS where the model wants it."""
        ids = self._tokenizer.encode(text, add_special_tokens=add_special_tokens)
        return [TokenId(int(i)) for i in ids]

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``token_ids``; incomplete UTF-8 decodes to U+FFFD."""
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens))

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` in the model's chat template.

        Raises ``ValueError`` when there is no template or it rejects the messages.
        """
        if not self.has_chat_template:
            raise ValueError("the model has no chat template")
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        try:
            text = self._tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except ValueError:
            raise
        except Exception as error:  # jinja2.TemplateError, raise_exception(...) in templates
            raise ValueError(f"chat template failed: {error}") from error
        return str(text)


def generation_config_eos(model_dir: Path) -> list[int]:
    """``eos_token_id`` of ``generation_config.json`` (an int or a list), if the file has one."""
    path = model_dir / "generation_config.json"
    if not path.is_file():
        return []
    value = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int)]
    return []


def load_tokenizer(source: str, *, trust_remote_code: bool = False) -> TrtLlmTokenizer:
    """The tokenizer of a model directory (or hub id), as TensorRT-LLM loads it. Slow: keep off the loop."""
    transformers = importlib.import_module("transformers")
    tokenizer: HfTokenizer = transformers.AutoTokenizer.from_pretrained(
        source, trust_remote_code=trust_remote_code
    )
    model_dir = Path(source)
    extra = generation_config_eos(model_dir) if model_dir.is_dir() else []
    return TrtLlmTokenizer(tokenizer, extra_eos_token_ids=extra)
