"""The model's shape, read once from GGUF metadata and carried as one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Hyper-parameters of a Llama-architecture model."""

    n_layers: int
    dim: int
    ffn_dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    rope_theta: float
    context_length: int
    norm_eps: float
    tied_embeddings: bool

    @classmethod
    def from_gguf_metadata(cls, meta: Mapping[str, Any], *, tied_embeddings: bool) -> ModelConfig:
        """Build from GGUF key/values (``<arch>.block_count`` etc.).

        ``tied_embeddings`` is not metadata in GGUF: it is the absence of an
        ``output.weight`` tensor, so the caller who sees the tensor list says.
        """
        arch = str(meta["general.architecture"])
        if arch != "llama":
            raise ValueError(f"unsupported GGUF architecture {arch!r}; only 'llama' is implemented")

        def key(name: str) -> Any:
            return meta[f"{arch}.{name}"]

        dim = int(key("embedding_length"))
        n_heads = int(key("attention.head_count"))
        head_dim = int(meta.get(f"{arch}.rope.dimension_count", dim // n_heads))
        vocab = meta.get(f"{arch}.vocab_size")
        return cls(
            n_layers=int(key("block_count")),
            dim=dim,
            ffn_dim=int(key("feed_forward_length")),
            n_heads=n_heads,
            n_kv_heads=int(meta.get(f"{arch}.attention.head_count_kv", n_heads)),
            head_dim=head_dim,
            vocab_size=int(vocab) if vocab is not None else len(meta["tokenizer.ggml.tokens"]),
            rope_theta=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
            context_length=int(key("context_length")),
            norm_eps=float(key("attention.layer_norm_rms_epsilon")),
            tied_embeddings=tied_embeddings,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the converted-weights cache)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of ``to_json``."""
        return cls(**dict(data))
