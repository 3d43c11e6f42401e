"""A tiny random model of the native engine's architecture: its config, random weights, a prompt and EOS."""

from __future__ import annotations

import torch

from engines.contract import TokenId
from engines.native.config import ModelConfig
from engines.native.matrices import Weight

CONFIG = ModelConfig(
    n_layers=4,
    dim=32,
    ffn_dim=64,
    n_heads=4,
    n_kv_heads=2,
    head_dim=8,
    vocab_size=64,
    rope_theta=1e4,
    context_length=64,
    norm_eps=1e-5,
    tied_embeddings=True,
)
PROMPT = tuple(TokenId(t) for t in (5, 9, 14, 3, 27, 9, 14))
EOS = frozenset({TokenId(0)})


def random_weights(c: ModelConfig) -> dict[str, Weight]:
    """A random model of ``c``'s shape, named as ``weights.load_weights`` names a GGUF's tensors."""
    kv = c.n_kv_heads * c.head_dim
    shapes = {"tok_embeddings.weight": (c.vocab_size, c.dim), "norm.weight": (c.dim,)}
    for i in range(c.n_layers):
        p = f"layers.{i}."
        shapes |= {
            p + "attention_norm.weight": (c.dim,),
            p + "ffn_norm.weight": (c.dim,),
            p + "attention.wq.weight": (c.n_heads * c.head_dim, c.dim),
            p + "attention.wk.weight": (kv, c.dim),
            p + "attention.wv.weight": (kv, c.dim),
            p + "attention.wo.weight": (c.dim, c.n_heads * c.head_dim),
            p + "feed_forward.w1.weight": (c.ffn_dim, c.dim),
            p + "feed_forward.w3.weight": (c.ffn_dim, c.dim),
            p + "feed_forward.w2.weight": (c.dim, c.ffn_dim),
        }
    return {name: torch.randn(shape) * 0.3 for name, shape in shapes.items()}
