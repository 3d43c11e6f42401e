"""A plain PyTorch Llama (RMSNorm, rotate-half RoPE, GQA attention, SwiGLU), slot-batched.

Activations are fp32; weights are GGUF blocks or fp32 (``matrices``).

Every forward pass reads and writes the slot-based KV cache: a batch is a set
of rows, each one request's slot at its own position (see ``kv_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engines.native import fused
from engines.native.config import ModelConfig
from engines.native.fused import SILU_MUL_MAX_ELEMENTS
from engines.native.kv_cache import BatchLayout, KVCache, make_layout
from engines.native.matrices import Matrix, QuantizedMatrix, Weight, WeightFormat, as_matrix, stack_rows


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` with the dense kernel.

    ``F.linear`` for every row count: a padded ``W @ x.T`` once measured 1.3-2.3x faster for 1-8
    rows on an AMD EPYC was 3-5x slower on an Intel Xeon (docs/benchmarks.md); the default engine
    computes from quantized blocks anyway (``matrices``), so this is the reference path.
    """
    return F.linear(x, weight)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale."""

    def __init__(self, dim: int, eps: float, *, fused: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.fused = fused
        self.weight = nn.Parameter(torch.ones(dim), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return fused.rms_norm(x, self.weight, self.eps)
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


@dataclass(frozen=True, slots=True)
class PassContext:
    """What every layer of one forward pass shares: where rows live and their rotary angles."""

    layout: BatchLayout
    starts: torch.Tensor
    """[B] int64: each row's first position."""
    cache: KVCache
    cos: torch.Tensor
    """[B, 1, T, head_dim]"""
    sin: torch.Tensor
    rope_cos: torch.Tensor
    """The model's whole tables, [max_seq, head_dim]: the fused RoPE indexes them itself."""
    rope_sin: torch.Tensor
    mask: torch.Tensor
    """[B, 1, group * T, length]: matches the folded queries in ``Attention``."""


class Attention(nn.Module):
    """Grouped-query attention over each row's own slot in layer ``layer`` of the KV cache."""

    def __init__(self, config: ModelConfig, layer: int, wqkv: Matrix, wo: Matrix, *, fused: bool) -> None:
        super().__init__()
        self.layer = layer
        self.fused = fused
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        # One fused matmul for q, k and v: fewer, larger kernels per step.
        self.wqkv = wqkv
        self.wo = wo

    def forward(self, x: torch.Tensor, ctx: PassContext) -> torch.Tensor:
        batch, n_tokens, _ = x.shape
        q_size = self.n_heads * self.head_dim
        kv_size = self.n_kv_heads * self.head_dim
        qkv = self.wqkv.matmul(x)
        # Queries and keys rotate together: one set of RoPE ops for both.
        heads = self.n_heads + self.n_kv_heads
        qk = qkv[..., : q_size + kv_size].view(batch, n_tokens, heads, self.head_dim).transpose(1, 2)
        if self.fused:
            qk = fused.rope_(qk.contiguous(), ctx.layout.positions, ctx.rope_cos, ctx.rope_sin)
        else:
            qk = apply_rope(qk, ctx.cos, ctx.sin)
        q, k = qk[:, : self.n_heads], qk[:, self.n_heads :]
        v = qkv[..., q_size + kv_size :].view(batch, n_tokens, self.n_kv_heads, self.head_dim).transpose(1, 2)
        ctx.cache.write(self.layer, ctx.layout, k, v)
        if self.fused and n_tokens <= fused.ATTENTION_MAX_TOKENS:
            # Reads each row's slot in place: no gathered copy of the keys and values.
            attended = fused.attention(qk, self.n_heads, ctx.cache, self.layer, ctx.layout, ctx.starts)
            return self.wo.matmul(attended)
        keys, values = ctx.cache.read(self.layer, ctx.layout)
        # Query heads h*group .. h*group+group-1 share kv head h: fold them into the
        # sequence axis so attention needs no repeated copy of the keys and values.
        group = self.n_heads // self.n_kv_heads
        q = q.reshape(batch, self.n_kv_heads, group * n_tokens, self.head_dim)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=ctx.mask)
        out = out.reshape(batch, self.n_heads, n_tokens, self.head_dim).transpose(1, 2)
        return self.wo.matmul(out.reshape(batch, n_tokens, q_size))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x), with w1 and w3 fused into one matmul."""

    def __init__(self, ffn_dim: int, w13: Matrix, w2: Matrix, *, fused: bool, fused_rows: int = 0) -> None:
        super().__init__()
        self.ffn_dim = ffn_dim
        self.fused = fused
        self.w13 = w13
        self.w2 = w2
        # The fused gate is used up to ~16 rows, where it is fastest, and up to ``fused_rows``
        # (int8 activations: every decode pass), where a row must not depend on its pass.
        self.silu_max_elements = max(SILU_MUL_MAX_ELEMENTS, fused_rows * 2 * ffn_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = self.w13.matmul(x)
        if self.fused and gate_up.numel() <= self.silu_max_elements:
            return self.w2.matmul(fused.silu_mul(gate_up))
        gate, up = torch.split(gate_up, [self.ffn_dim, self.ffn_dim], dim=-1)
        return self.w2.matmul(F.silu(gate) * up)


class Block(nn.Module):
    """One pre-norm transformer layer."""

    def __init__(
        self, config: ModelConfig, attention: Attention, feed_forward: FeedForward, *, fused: bool
    ) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.dim, config.norm_eps, fused=fused)
        self.attention = attention
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps, fused=fused)
        self.feed_forward = feed_forward

    def forward(self, x: torch.Tensor, ctx: PassContext) -> torch.Tensor:
        h: torch.Tensor = x + self.attention(self.attention_norm(x), ctx)
        out: torch.Tensor = h + self.feed_forward(self.ffn_norm(h))
        return out


class Transformer(nn.Module):
    """The Llama decoder. Build with ``from_weights``."""

    def __init__(
        self,
        config: ModelConfig,
        max_seq: int,
        blocks: Sequence[Block],
        embeddings: Matrix,
        output: Matrix,
        *,
        fused: bool,
    ) -> None:
        super().__init__()
        self.config = config
        self.max_seq = max_seq
        self.layers = nn.ModuleList(blocks)
        self.norm = RMSNorm(config.dim, config.norm_eps, fused=fused)
        self.embeddings = embeddings
        """``[vocab, dim]``: token embeddings (looked up by row)."""
        self.output = output
        """``[vocab, dim]``: the output head (the same matrix when the embeddings are tied)."""
        self.rope_cos, self.rope_sin = rope_tables(config.head_dim, config.rope_theta, max_seq)

    @classmethod
    def from_weights(
        cls,
        config: ModelConfig,
        state_dict: dict[str, Weight],
        max_seq: int,
        weight_format: WeightFormat = WeightFormat.FP32,
        *,
        decode_rows: int = 0,
    ) -> Transformer:
        """Build from the unfused state dict of ``weights.load_weights``; takes ownership of its tensors.

        ``weight_format`` Q (and Q8ACT) keeps GGUF blocks and computes from them, with the fused
        small operations of ``fused``; FP32 dequantizes everything and uses torch's operators only.
        ``decode_rows``: the most rows of a decode or verification pass (``matrices.as_matrix``).
        """
        state = dict(state_dict)
        use_fused = weight_format.keeps_blocks

        def matrix(name: str) -> Matrix:
            return as_matrix(state.pop(name), weight_format, decode_rows=decode_rows)

        def vector(name: str) -> torch.Tensor:
            value = state.pop(name)
            return value.dense() if isinstance(value, QuantizedMatrix) else value

        blocks = []
        for i in range(config.n_layers):
            p = f"layers.{i}."
            wqkv = stack_rows([matrix(p + f"attention.{name}.weight") for name in ("wq", "wk", "wv")])
            w13 = stack_rows([matrix(p + f"feed_forward.{name}.weight") for name in ("w1", "w3")])
            attention = Attention(config, i, wqkv, matrix(p + "attention.wo.weight"), fused=use_fused)
            feed_forward = FeedForward(
                config.ffn_dim,
                w13,
                matrix(p + "feed_forward.w2.weight"),
                fused=use_fused,
                fused_rows=decode_rows if weight_format is WeightFormat.Q8ACT else 0,
            )
            block = Block(config, attention, feed_forward, fused=use_fused)
            block.attention_norm.weight.data = vector(p + "attention_norm.weight")
            block.ffn_norm.weight.data = vector(p + "ffn_norm.weight")
            blocks.append(block)
        embeddings = matrix("tok_embeddings.weight")
        output = embeddings if config.tied_embeddings else matrix("output.weight")
        model = cls(config, max_seq, blocks, embeddings, output, fused=use_fused)
        model.norm.weight.data = vector("norm.weight")
        if state:
            raise ValueError(f"unexpected tensors in the weights: {sorted(state)[:5]}")
        model.requires_grad_(False)
        return model.eval()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """fp32 embeddings ``[*tokens.shape, dim]`` of token ids."""
        if isinstance(self.embeddings, QuantizedMatrix):
            return self.embeddings.take_rows(tokens)
        return F.embedding(tokens, self.embeddings.dense())

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
        group = self.config.n_heads // self.config.n_kv_heads
        mask = layout.mask.unsqueeze(1).expand(batch, group, n_tokens, layout.length)
        ctx = PassContext(
            layout=layout,
            starts=layout.positions[:, 0].contiguous(),
            cache=cache,
            cos=self.rope_cos[layout.positions].unsqueeze(1),
            sin=self.rope_sin[layout.positions].unsqueeze(1),
            rope_cos=self.rope_cos,
            rope_sin=self.rope_sin,
            mask=mask.reshape(batch, 1, group * n_tokens, layout.length),
        )
        x = self.embed(tokens)
        captured: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.layers):
            x = block(x, ctx)
            if index in feature_layers:
                captured[index] = x
        features = torch.cat([captured[i] for i in feature_layers], dim=-1) if feature_layers else None
        if not all_logits:
            x = x[:, -1, :]
        return self.output.matmul(self.norm(x)), features
