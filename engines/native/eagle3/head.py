"""The EAGLE-3 draft head for the native engine, written from the EAGLE-3 paper's description.

What the head reads: at every position ``p`` the target's hidden states after
three of its layers (low, middle, high: ``Eagle3Config.feature_layers``),
concatenated (``F_p``, 3 x dim) and fused to one vector by ``fc``, together
with the target's embedding of the token that follows, ``x_{p+1}``. One
decoder layer (its attention takes both vectors side by side, 2 x dim in)
turns them into ``o_p``, and a small output layer over a reduced *draft
vocabulary* (the most frequent tokens of the target's own answers, mapped back
to target ids by ``d2t``) predicts ``x_{p+2}``.

Drafting k tokens after the target has verified a step:

1. *extend*: one entry per newly verified position ``p`` (fused target features
   + embedding of ``x_{p+1}``) goes into the head's own KV cache; the last one's
   output gives the first draft token.
2. each further draft token feeds the head its own previous output ``o`` in
   place of the fused target features, with the embedding of the token it just
   drafted, one position further on. These speculative entries sit beyond the
   verified length and are overwritten by the next *extend*.

Training (``train``) unrolls exactly this: step 1 over all positions in
parallel with target features, then steps 2..n where each position's chain
attends to the step-1 entries up to its own position plus its own earlier
speculative entries (the paper's "training-time test").
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engines.native.kv_cache import KVCache
from engines.native.model import apply_rope, linear, rope_tables


@dataclass(frozen=True, slots=True)
class Eagle3Config:
    """Shapes of a head; saved next to its weights."""

    dim: int
    """The target's hidden size."""
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    draft_vocab_size: int
    target_vocab_size: int
    feature_layers: tuple[int, int, int]
    """Target layers whose outputs the head reads (low, middle, high)."""
    norm_eps: float
    rope_theta: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Eagle3Config:
        values = dict(data)
        layers = values.pop("feature_layers")
        if not isinstance(layers, list) or len(layers) != 3:
            raise ValueError("feature_layers must list three layer indices")
        low, mid, high = (int(i) for i in layers)
        fields = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(feature_layers=(low, mid, high), **fields)  # type: ignore[arg-type]  # JSON values


def default_feature_layers(n_layers: int) -> tuple[int, int, int]:
    """Low, middle and high layers: the third, the middle one and the third from last."""
    return (2, n_layers // 2, n_layers - 3)


class _Norm(nn.Module):
    """RMSNorm with a trainable scale (the target's own norms are frozen)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Eagle3Head(nn.Module):
    """fc + one decoder layer + draft-vocabulary output layer. See the module docstring."""

    d2t: torch.Tensor
    """[draft_vocab] long: the target id of each draft-vocabulary entry."""
    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, config: Eagle3Config, max_seq: int) -> None:
        super().__init__()
        self.config = config
        c = config
        self.fc = nn.Linear(3 * c.dim, c.dim, bias=False)
        self.embed_norm = _Norm(c.dim, c.norm_eps)
        self.hidden_norm = _Norm(c.dim, c.norm_eps)
        self.wqkv = nn.Linear(2 * c.dim, (c.n_heads + 2 * c.n_kv_heads) * c.head_dim, bias=False)
        self.wo = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)
        self.ffn_norm = _Norm(c.dim, c.norm_eps)
        self.w13 = nn.Linear(c.dim, 2 * c.ffn_dim, bias=False)
        self.w2 = nn.Linear(c.ffn_dim, c.dim, bias=False)
        self.out_norm = _Norm(c.dim, c.norm_eps)
        self.lm_head = nn.Linear(c.dim, c.draft_vocab_size, bias=False)
        self.register_buffer("d2t", torch.zeros(c.draft_vocab_size, dtype=torch.long))
        cos, sin = rope_tables(c.head_dim, c.rope_theta, max_seq)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    # -- pieces shared by training and inference ------------------------------------------

    def _qkv(
        self, embeds: torch.Tensor, hidden: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [B, H, T, D], k and v [B, KV, T, D] for inputs [B, T, dim] at ``positions`` [B, T]."""
        c = self.config
        x = torch.cat((self.embed_norm(embeds), self.hidden_norm(hidden)), dim=-1)
        batch, n_tokens, _ = x.shape
        q_size, kv_size = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
        q, k, v = torch.split(linear(x, self.wqkv.weight), [q_size, kv_size, kv_size], dim=-1)
        cos = self.rope_cos[positions].unsqueeze(1)
        sin = self.rope_sin[positions].unsqueeze(1)
        q = apply_rope(q.view(batch, n_tokens, c.n_heads, c.head_dim).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(batch, n_tokens, c.n_kv_heads, c.head_dim).transpose(1, 2), cos, sin)
        v = v.view(batch, n_tokens, c.n_kv_heads, c.head_dim).transpose(1, 2)
        return q, k, v

    def _finish(self, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Residual + feed-forward after attention; ``attended`` is [B, H, T, D]. Returns o [B, T, dim]."""
        c = self.config
        batch, _, n_tokens, _ = attended.shape
        merged = attended.transpose(1, 2).reshape(batch, n_tokens, c.n_heads * c.head_dim)
        h = hidden + linear(merged, self.wo.weight)
        gate, up = torch.split(linear(self.ffn_norm(h), self.w13.weight), [c.ffn_dim, c.ffn_dim], dim=-1)
        out: torch.Tensor = h + linear(F.silu(gate) * up, self.w2.weight)
        return out

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        """Draft-vocabulary logits for outputs ``o``."""
        return linear(self.out_norm(out), self.lm_head.weight)

    def fuse(self, features: torch.Tensor) -> torch.Tensor:
        """The fused target features ``fc(F)``."""
        return linear(features, self.fc.weight)

    # -- training: the unrolled "training-time test" --------------------------------------

    def unroll(
        self, features: torch.Tensor, tokens: torch.Tensor, embeddings: torch.Tensor, steps: int
    ) -> list[torch.Tensor]:
        """Draft logits of ``steps`` unrolled steps for every position (training).

        ``features`` [B, L, 3 dim]: the target's at positions 0..L-1. ``tokens`` [B, L + steps]:
        the sequence (padded). Step j (1-based) at position p reads ``x_{p+j}`` and predicts
        ``x_{p+j+1}``; returns one ``[B, L, draft_vocab]`` tensor per step.
        """
        c = self.config
        batch, length, _ = features.shape
        group = c.n_heads // c.n_kv_heads
        positions = torch.arange(length).expand(batch, length)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        hidden = self.fuse(features)
        all_logits: list[torch.Tensor] = []
        base_k = base_v = torch.empty(0)
        extra_k: list[torch.Tensor] = []
        extra_v: list[torch.Tensor] = []
        scale = 1.0 / math.sqrt(c.head_dim)
        for step in range(steps):
            embeds = F.embedding(tokens[:, 1 + step : 1 + step + length], embeddings)
            q, k, v = self._qkv(embeds, hidden, positions + step)
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            if step == 0:
                base_k, base_v = k, v
            else:
                extra_k.append(k)
                extra_v.append(v)
            scores = torch.matmul(q, base_k.transpose(-1, -2)) * scale
            scores = scores.masked_fill(~causal, float("-inf"))
            # Each chain's own speculative entries: one score per position (a diagonal).
            diagonal = [(q * ek).sum(-1, keepdim=True) * scale for ek in extra_k]
            weights = torch.softmax(torch.cat([scores, *diagonal], dim=-1), dim=-1)
            attended = torch.matmul(weights[..., :length], base_v)
            for i, ev in enumerate(extra_v):
                attended = attended + weights[..., length + i : length + i + 1] * ev
            out = self._finish(hidden, attended)
            all_logits.append(self.logits(out))
            hidden = out
        return all_logits


class Eagle3Drafter:
    """Inference: the head's one-layer KV cache per slot, and drafting (worker thread only)."""

    def __init__(
        self,
        head: Eagle3Head,
        embed: Callable[[torch.Tensor], torch.Tensor],
        *,
        max_slots: int,
        max_seq: int,
        min_confidence: float = 0.0,
    ) -> None:
        c = head.config
        self.min_confidence = min_confidence
        """Drafting stops at the first token the head gives less probability than this: a token
        that is probably wrong costs a verified position and rarely pays it back."""
        self.head = head
        self.config = c
        self._embed = embed
        """The target's token embeddings: ids -> fp32 ``[*ids.shape, dim]``."""
        # The target's cache layout (no huge pages: memory follows the positions written).
        cache = KVCache(
            n_layers=1, max_slots=max_slots, n_kv_heads=c.n_kv_heads, max_seq=max_seq, head_dim=c.head_dim
        )
        self._k, self._v = cache.k[0], cache.v[0]
        self._cache = cache
        self._d2t = head.d2t.tolist()
        self.max_seq = max_seq

    def _layer(self, slot: int, start: int, embeds: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Write entries at ``start..`` for inputs [1, T, dim]; attend to the slot's cache up to them."""
        head, c = self.head, self.config
        n_tokens = embeds.shape[1]
        positions = torch.arange(start, start + n_tokens).unsqueeze(0)
        q, k, v = head._qkv(embeds, hidden, positions)
        stop = start + n_tokens
        self._k[slot, :, start:stop] = k[0]
        self._v[slot, :, start:stop] = v[0]
        keys = self._k[slot : slot + 1, :, :stop]
        values = self._v[slot : slot + 1, :, :stop]
        group = c.n_heads // c.n_kv_heads
        q = q.reshape(1, c.n_kv_heads, group * n_tokens, c.head_dim)
        mask = torch.arange(stop)[None, :] <= positions[0, :, None]
        mask = mask.unsqueeze(0).expand(group, n_tokens, stop).reshape(1, 1, group * n_tokens, stop)
        attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        attended = attended.reshape(1, c.n_heads, n_tokens, c.head_dim)
        return head._finish(hidden, attended)

    def draft(
        self, slot: int, start: int, features: torch.Tensor, next_tokens: Sequence[int], max_draft: int
    ) -> list[int]:
        """Enter verified positions ``start..`` and propose up to ``max_draft`` tokens after them.

        ``features`` [T, 3 dim] are the target's at positions ``start .. start+T-1`` and
        ``next_tokens`` the T tokens that followed each of them (the last is the token the
        target just chose). Returns target token ids (greedy under the head).
        """
        max_draft = min(max_draft, self.max_seq - start - len(next_tokens))
        drafted: list[int] = []
        for logits in self._chain(slot, start, features, next_tokens, max_draft, drafted):
            best = int(torch.argmax(logits))
            if self.min_confidence > 0.0 and float(torch.softmax(logits, dim=-1)[best]) < self.min_confidence:
                break
            drafted.append(self._d2t[best])
        return drafted

    def chain_logits(
        self, slot: int, start: int, features: torch.Tensor, next_tokens: Sequence[int], follow: Sequence[int]
    ) -> list[torch.Tensor]:
        """Draft logits of ``len(follow) + 1`` steps when the drafted tokens are forced to ``follow``.

        What ``draft`` computes, with the head's own choices replaced: lets tests compare
        inference with the unrolled training computation position by position.
        """
        fed: list[int] = []
        out = []
        for logits in self._chain(slot, start, features, next_tokens, len(follow) + 1, fed):
            out.append(logits)
            if len(fed) < len(follow):
                fed.append(follow[len(fed)])
        return out

    def _chain(
        self,
        slot: int,
        start: int,
        features: torch.Tensor,
        next_tokens: Sequence[int],
        steps: int,
        fed: list[int],
    ) -> Iterator[torch.Tensor]:
        """Yield each step's draft logits; the caller appends that step's token to ``fed`` before resuming."""
        if steps < 1:
            return
        embeds = self._embed(torch.tensor([list(next_tokens)]))
        hidden = self.head.fuse(features.unsqueeze(0))
        out = self._layer(slot, start, embeds, hidden)[:, -1:]
        position = start + len(next_tokens)
        for step in range(steps):
            yield self.head.logits(out[0, -1])
            if step + 1 == steps:
                return
            embeds = self._embed(torch.tensor([[fed[-1]]]))
            out = self._layer(slot, position, embeds, out)
            position += 1


WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_HEAD = WEIGHTS_DIR / "smollm2-135m-instruct-eagle3.safetensors"
"""The head trained by ``tokenwire train-draft`` and shipped in the repository (fp16)."""


def manifest_path(weights: Path) -> Path:
    """``<name>.json`` next to ``<name>.safetensors``: config, sha256 and training record."""
    return weights.with_suffix(".json")


def read_manifest(weights: Path) -> dict[str, object]:
    data = json.loads(manifest_path(weights).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{manifest_path(weights)} is not a JSON object")
    return data


class HeadIntegrityError(ValueError):
    """The head's weights do not match its manifest (checksum or shapes)."""


def load_head(path: Path, max_seq: int) -> tuple[Eagle3Head, str]:
    """The head at ``path`` in fp32, after checking the file's sha256 against its manifest.

    Returns the head and its sha256. Raises ``HeadIntegrityError`` on a checksum or shape
    mismatch, ``FileNotFoundError`` when the file or manifest is missing.
    """
    from safetensors.torch import load_file

    manifest = read_manifest(path)
    expected = manifest.get("sha256")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise HeadIntegrityError(f"{path}: sha256 {digest} does not match the manifest's {expected}")
    config_data = manifest.get("config")
    if not isinstance(config_data, dict):
        raise HeadIntegrityError(f"{manifest_path(path)} has no config")
    config = Eagle3Config.from_json(config_data)
    tensors = load_file(str(path))
    state = {name: t.to(torch.long) if name == "d2t" else t.float() for name, t in tensors.items()}
    with torch.device("meta"):
        head = Eagle3Head(config, max_seq)
    cos, sin = rope_tables(config.head_dim, config.rope_theta, max_seq)
    try:
        head.load_state_dict(state, assign=True, strict=True)
    except RuntimeError as error:
        raise HeadIntegrityError(f"{path}: weights do not fit the manifest's config: {error}") from error
    head.rope_cos, head.rope_sin = cos, sin
    d2t = head.d2t
    if d2t.min() < 0 or d2t.max() >= config.target_vocab_size:
        raise HeadIntegrityError(f"{path}: draft vocabulary maps outside the target's vocabulary")
    head.requires_grad_(False)
    return head.eval(), digest
