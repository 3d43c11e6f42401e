"""A plain PyTorch Llama (RMSNorm, rotate-half RoPE, GQA attention, SwiGLU), fp32, slot-batched.

Every forward pass reads and writes the slot-based KV cache: a batch is a set
of rows, each one request's slot at its own position (see ``kv_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engines.native.config import ModelConfig
from engines.native.kv_cache import BatchLayout, KVCache, make_layout

# Up to this many rows, ``W @ x.T`` beats ``F.linear(x, W)`` on this CPU (measured on the
# SmolLM2 matrices: 1.3-2.3x for 1-8 rows); beyond it (prefill) F.linear is the better kernel.
_SMALL_BATCH_ROWS = 16


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` for ``x`` [..., in], choosing the faster CPU kernel for the row count."""
    rows = x.reshape(-1, x.shape[-1])
    n_rows = rows.shape[0]
    if n_rows == 1 and _SMALL_BATCH_ROWS:
        # The one-row (matrix-vector) kernel is slower than the two-row one: pad and drop.
        out = (weight @ rows.repeat(2, 1).t())[:, :1].t()
    elif n_rows <= _SMALL_BATCH_ROWS:
        out = (weight @ rows.t()).t()
    else:
        out = F.linear(rows, weight)
    return out.reshape(*x.shape[:-1], weight.shape[0])


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, theta: float, max_seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each ``[max_seq, head_dim]``, in the rotate-half layout."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (theta**exponents)
    freqs = torch.outer(torch.arange(max_seq, dtype=torch.float32), inv_freq)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [B, H, T, D] by its positions' angles (cos/sin [B, 1, T, D])."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Grouped-query attention over each row's own slot in the KV cache."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        qkv_out = (config.n_heads + 2 * config.n_kv_heads) * config.head_dim
        # One fused matmul for q, k and v: fewer, larger kernels per step.
        self.wqkv = nn.Linear(config.dim, qkv_out, bias=False)
        self.wo = nn.Linear(config.n_heads * config.head_dim, config.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        layout: BatchLayout,
        cache: KVCache,
        layer: int,
    ) -> torch.Tensor:
        batch, n_tokens, _ = x.shape
        q_size = self.n_heads * self.head_dim
        kv_size = self.n_kv_heads * self.head_dim
        q, k, v = torch.split(linear(x, self.wqkv.weight), [q_size, kv_size, kv_size], dim=-1)
        q = q.view(batch, n_tokens, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, n_tokens, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, n_tokens, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        cache.write(layer, layout, k, v)
        keys, values = cache.read(layer, layout)
        # Query heads h*group .. h*group+group-1 share kv head h: fold them into the
        # sequence axis so attention needs no repeated copy of the keys and values.
        group = self.n_heads // self.n_kv_heads
        q = q.reshape(batch, self.n_kv_heads, group * n_tokens, self.head_dim)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        out = out.reshape(batch, self.n_heads, n_tokens, self.head_dim).transpose(1, 2)
        return linear(out.reshape(batch, n_tokens, q_size), self.wo.weight)


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x), with w1 and w3 fused into one matmul."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ffn_dim = config.ffn_dim
        self.w13 = nn.Linear(config.dim, 2 * config.ffn_dim, bias=False)
        self.w2 = nn.Linear(config.ffn_dim, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = torch.split(linear(x, self.w13.weight), [self.ffn_dim, self.ffn_dim], dim=-1)
        return linear(F.silu(gate) * up, self.w2.weight)


class Block(nn.Module):
    """One pre-norm transformer layer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.dim, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        layout: BatchLayout,
        cache: KVCache,
        layer: int,
    ) -> torch.Tensor:
        h: torch.Tensor = x + self.attention(self.attention_norm(x), cos, sin, mask, layout, cache, layer)
        out: torch.Tensor = h + self.feed_forward(self.ffn_norm(h))
        return out


class Transformer(nn.Module):
    """The Llama decoder. Build with ``from_weights``."""

    def __init__(self, config: ModelConfig, max_seq: int) -> None:
        super().__init__()
        self.config = config
        self.max_seq = max_seq
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = None if config.tied_embeddings else nn.Linear(config.dim, config.vocab_size, bias=False)
        self.rope_cos, self.rope_sin = rope_tables(config.head_dim, config.rope_theta, max_seq)

    @classmethod
    def from_weights(
        cls, config: ModelConfig, state_dict: dict[str, torch.Tensor], max_seq: int
    ) -> Transformer:
        """Build from the unfused state dict of ``weights.load_weights``; takes ownership of its tensors."""
        fused = dict(state_dict)
        for i in range(config.n_layers):
            p = f"layers.{i}."
            fused[p + "attention.wqkv.weight"] = torch.cat(
                [fused.pop(p + f"attention.{name}.weight") for name in ("wq", "wk", "wv")]
            )
            fused[p + "feed_forward.w13.weight"] = torch.cat(
                [fused.pop(p + f"feed_forward.{name}.weight") for name in ("w1", "w3")]
            )
        # Meta-device construction skips random initialisation of 135M parameters.
        with torch.device("meta"):
            model = cls(config, max_seq)
        model.rope_cos, model.rope_sin = rope_tables(config.head_dim, config.rope_theta, max_seq)
        model.load_state_dict(fused, assign=True, strict=True)
        model.requires_grad_(False)
        return model.eval()

    def forward(
        self,
        tokens: torch.Tensor,
        slots: Sequence[int],
        starts: Sequence[int],
        cache: KVCache,
        *,
        all_logits: bool = False,
    ) -> torch.Tensor:
        """Run ``tokens`` [B, T]: row b is slot ``slots[b]`` at positions ``starts[b]`` onwards.

        Returns fp32 logits ``[B, vocab]`` of each row's last token, or
        ``[B, T, vocab]`` with ``all_logits``.
        """
        logits, _ = self._run(tokens, slots, starts, cache, all_logits=all_logits, feature_layers=())
        return logits

    def forward_with_features(
        self,
        tokens: torch.Tensor,
        slots: Sequence[int],
        starts: Sequence[int],
        cache: KVCache,
        feature_layers: Sequence[int],
        *,
        all_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward``, plus the hidden states after each of ``feature_layers`` at every position.

        The features are ``[B, T, len(feature_layers) * dim]``, concatenated in the given order:
        what an EAGLE-3 draft head reads.
        """
        logits, features = self._run(
            tokens, slots, starts, cache, all_logits=all_logits, feature_layers=tuple(feature_layers)
        )
        assert features is not None
        return logits, features

    def _run(
        self,
        tokens: torch.Tensor,
        slots: Sequence[int],
        starts: Sequence[int],
        cache: KVCache,
        *,
        all_logits: bool,
        feature_layers: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, n_tokens = tokens.shape
        layout = make_layout(slots, starts, n_tokens)
        if layout.length > self.max_seq:
            raise ValueError(f"position {layout.length - 1} is beyond the cache ({self.max_seq})")
        cos = self.rope_cos[layout.positions].unsqueeze(1)
        sin = self.rope_sin[layout.positions].unsqueeze(1)
        group = self.config.n_heads // self.config.n_kv_heads
        # Matches the folded [B, kv_heads, group*T, D] queries in Attention.
        mask = layout.mask.unsqueeze(1).expand(batch, group, n_tokens, layout.length)
        mask = mask.reshape(batch, 1, group * n_tokens, layout.length)
        x = self.tok_embeddings(tokens)
        captured: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.layers):
            x = block(x, cos, sin, mask, layout, cache, index)
            if index in feature_layers:
                captured[index] = x
        features = torch.cat([captured[i] for i in feature_layers], dim=-1) if feature_layers else None
        if not all_logits:
            x = x[:, -1, :]
        x = self.norm(x)
        weight = self.tok_embeddings.weight if self.output is None else self.output.weight
        return linear(x, weight), features
