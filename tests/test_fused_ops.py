"""The fused decode-step operations against the torch operators they replace."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engines.native import fused
from engines.native.kv_cache import KVCache, make_layout
from engines.native.model import apply_rope, rope_tables


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def test_rms_norm_and_silu_mul() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 576, generator=g)
    w = torch.randn(576, generator=g)
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    assert close(fused.rms_norm(x, w, 1e-5), expected)
    gate_up = torch.randn(2, 4, 2 * 1536, generator=g)
    gate, up = torch.split(gate_up, [1536, 1536], dim=-1)
    assert close(fused.silu_mul(gate_up), F.silu(gate) * up)


def test_rope_matches_rotate_half() -> None:
    cos, sin = rope_tables(64, 100000.0, 512)
    x = torch.randn(2, 12, 3, 64, generator=torch.Generator().manual_seed(1))
    positions = torch.tensor([[7, 8, 9], [300, 301, 302]])
    expected = apply_rope(x, cos[positions].unsqueeze(1), sin[positions].unsqueeze(1))
    assert close(fused.rope_(x.clone(), positions, cos, sin), expected)


def test_attention_matches_sdpa_on_any_slots_and_starts() -> None:
    """Rows in non-consecutive slots at different positions, several tokens each (a verification)."""
    g = torch.Generator().manual_seed(2)
    heads, kv_heads, dim, tokens = 9, 3, 64, 4
    cache = KVCache(n_layers=2, max_slots=5, n_kv_heads=kv_heads, max_seq=300, head_dim=dim)
    slots, starts = [4, 1, 2], [0, 37, 211]
    for slot, start in zip(slots, starts, strict=True):  # history before the pass
        if start:
            history = make_layout([slot], [0], start)
            k, v = torch.randn(2, 1, kv_heads, start, dim, generator=g)
            cache.write(1, history, k, v)
    layout = make_layout(slots, starts, tokens)
    qk = torch.randn(len(slots), heads + kv_heads, tokens, dim, generator=g)
    v = torch.randn(len(slots), kv_heads, tokens, dim, generator=g)
    cache.write(1, layout, qk[:, heads:], v)
    got = fused.attention(qk, heads, cache, 1, layout, torch.tensor(starts))
    keys, values = cache.read(1, layout)
    group = heads // kv_heads
    q = qk[:, :heads].reshape(len(slots), kv_heads, group * tokens, dim)
    mask = layout.mask.unsqueeze(1).expand(len(slots), group, tokens, layout.length)
    mask = mask.reshape(len(slots), 1, group * tokens, layout.length)
    expected = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
    expected = expected.reshape(len(slots), heads, tokens, dim).transpose(1, 2)
    expected = expected.reshape(len(slots), tokens, heads * dim)
    assert close(got, expected)
