"""Fused decode-step operations from the ``_qkernels`` extension (engines/native/kernels/glue.cpp).

At one or a few rows per pass, torch spends more time dispatching RMSNorm,
SwiGLU's gate and attention than computing them; these do each in one call on
raw fp32 buffers. The model uses them with quantized weights (the CPU engine);
the fp32 reference path keeps torch's operators.
"""

from __future__ import annotations

import torch

from engines.contract import MAX_DRAFT_LENGTH
from engines.native.kv_cache import BatchLayout, KVCache
from engines.native.matrices import kernels

ATTENTION_MAX_TOKENS = MAX_DRAFT_LENGTH + 1
"""Tokens per row up to which ``attention`` is used: every decode step and verification pass (the
last token and the longest draft), so a row's attention never depends on the pass it is in. Its
plain loops lose to torch's flash attention on prefill chunks (a 530-token prompt's first token
took 2.2x longer through it), so longer passes use torch's."""


SILU_MUL_MAX_ELEMENTS = 16 * 2 * 1536
"""Up to about 16 rows of SmolLM2's gate and up: beyond, torch's vectorized exp is faster."""


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / rms(x) * weight`` over the last dimension of fp32 ``x``."""
    x = x.contiguous()
    out = torch.empty_like(x)
    dim = x.shape[-1]
    kernels().rmsnorm(x.data_ptr(), weight.data_ptr(), out.data_ptr(), x.numel() // dim, dim, eps)
    return out


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate_up = [gate | up]`` on the last dimension."""
    gate_up = gate_up.contiguous()
    width = gate_up.shape[-1] // 2
    out = torch.empty(*gate_up.shape[:-1], width, dtype=torch.float32)
    kernels().silu_mul(gate_up.data_ptr(), out.data_ptr(), gate_up.numel() // (2 * width), width)
    return out


def rope_(x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [B, heads, T, D] in place by int64 ``positions`` [B, T] (tables [max_seq, D])."""
    if not (x.is_contiguous() and positions.is_contiguous() and cos.is_contiguous() and sin.is_contiguous()):
        raise ValueError("rope_ needs contiguous tensors")
    batch, heads, tokens, head_dim = x.shape
    kernels().rope(
        x.data_ptr(), batch, heads, tokens, head_dim, positions.data_ptr(), cos.data_ptr(), sin.data_ptr()
    )
    return x


def attention(
    qk: torch.Tensor, n_heads: int, cache: KVCache, layer: int, layout: BatchLayout, starts: torch.Tensor
) -> torch.Tensor:
    """Causal GQA of the queries in ``qk[:, :n_heads]`` against each row's slot of ``layer``.

    ``qk`` is the rotated ``[B, heads + kv_heads, T, D]`` (queries first); the keys and values
    of these tokens must already be in the cache. ``starts`` is int64 ``[B]``. Returns
    ``[B, T, n_heads * D]``.
    """
    qk = qk.contiguous()
    batch, _, tokens, head_dim = qk.shape
    keys, values = cache.k[layer], cache.v[layer]
    kv_heads = keys.shape[1]
    if keys.stride(2) != head_dim or keys.stride(3) != 1 or values.stride() != keys.stride():
        raise ValueError("the cache layout does not match the attention kernel's")
    out = torch.empty(batch, tokens, n_heads * head_dim, dtype=torch.float32)
    kernels().attention(
        qk.data_ptr(),
        qk.stride(0),
        keys.data_ptr(),
        values.data_ptr(),
        keys.stride(0),
        keys.stride(1),
        layout.slots.data_ptr(),
        starts.data_ptr(),
        batch,
        tokens,
        n_heads,
        kv_heads,
        head_dim,
        out.data_ptr(),
    )
    return out
