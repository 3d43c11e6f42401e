"""Prefix caching: the keys and values of prompt prefixes seen before, reused by later requests.

Requests that share a beginning (a system prompt, a chat template's preamble,
the earlier turns of a conversation, n samples of one prompt) need not run it
through the model again. The cache keeps whole blocks of ``block_tokens``
positions (one KV-cache page per head: 16 positions for SmolLM2), each with
its keys and values in every layer and, when the request that wrote them
computed them, the target's EAGLE-3 feature rows, so an EAGLE-3 request can
reuse a prefix too.

- **Found by content.** Block ``i`` of a token sequence is keyed by a digest of
  block ``i - 1``'s key and its own tokens (a hash chain), so a block is only
  ever found after the same whole prefix; the block also keeps its tokens,
  which are compared on every hit, so a digest collision can never hand one
  request another's keys.
- **Copied, not shared.** A hit copies the blocks into the request's own slot
  (``KVCache`` slots stay contiguous, so attention never gathers from a pool);
  for a 400-token prefix that is ~18 MB of memory traffic instead of a forward
  pass over 400 tokens. A block enters the cache whole, after the positions it
  holds are final, and everything runs on the engine's worker thread, so a
  block is never read while it is written, and a request that is cancelled
  while it reads leaves the block as it was.
- **Bounded.** The blocks live in one anonymous mapping of ``capacity_blocks``
  blocks (pages touched only when written, given back on eviction). When it is
  full, a block that no other cached block continues (a leaf of the chains)
  makes room: one never reused first (most are single requests' outputs, and a
  flood of them must not push out a system prompt that keeps being reused),
  the least recently used among them.
- **What is stored.** Every request's prompt and output, block by block as
  their keys and values become final (a prompt chunk or a step completes a
  block), so a conversation's next turn finds its earlier turns and answers.
  The newest token has no keys yet, and a cancelled or failed request stores
  nothing more.
"""

from __future__ import annotations

import array
import hashlib
import math
import mmap
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engines.native.kv_cache import KVCache


@dataclass(slots=True)
class _Block:
    key: bytes
    parent: bytes | None
    tokens: tuple[int, ...]
    index: int
    """Where its keys, values and features are in the pool."""
    has_features: bool
    children: int = 0
    """Cached blocks that continue this one; only a block without any may be evicted."""
    last_used: int = 0
    reused: bool = False
    """A lookup has handed it out: it is worth more than a block only its writer saw."""


@dataclass(frozen=True, slots=True)
class Hit:
    """The cached beginning of a sequence: its blocks, in order."""

    blocks: tuple[_Block, ...]
    block_tokens: int

    @property
    def tokens(self) -> int:
        """Positions the hit covers."""
        return len(self.blocks) * self.block_tokens


class PrefixCache:
    """Blocks of keys, values and (optionally) features, found by the tokens before and in them."""

    def __init__(
        self,
        *,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        block_tokens: int,
        capacity_blocks: int,
        feature_dim: int = 0,
    ) -> None:
        """``feature_dim``: width of the feature rows kept with each block (0: none)."""
        if block_tokens < 1 or capacity_blocks < 1:
            raise ValueError("a prefix cache needs at least one block of at least one token")
        self.block_tokens = block_tokens
        self.capacity_blocks = capacity_blocks
        self._n_layers = n_layers
        kv_block = n_kv_heads * block_tokens * head_dim * 4
        feature_block = block_tokens * feature_dim * 4
        self._kv_bytes = capacity_blocks * kv_block
        self._feature_bytes = capacity_blocks * feature_block
        size = 2 * n_layers * self._kv_bytes + self._feature_bytes
        self._memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_NOHUGEPAGE"):
            self._memory.madvise(mmap.MADV_NOHUGEPAGE)
        flat = torch.frombuffer(self._memory, dtype=torch.float32)
        kv = flat[: 2 * n_layers * self._kv_bytes // 4].view(
            2 * n_layers, capacity_blocks, n_kv_heads, block_tokens, head_dim
        )
        self._k = [kv[2 * i] for i in range(n_layers)]
        self._v = [kv[2 * i + 1] for i in range(n_layers)]
        self._features = (
            flat[2 * n_layers * self._kv_bytes // 4 :].view(capacity_blocks, block_tokens, feature_dim)
            if feature_dim
            else None
        )
        self._kv_block_bytes = kv_block
        self._feature_block_bytes = feature_block
        self._blocks: dict[bytes, _Block] = {}
        self._free = list(range(capacity_blocks - 1, -1, -1))
        self._clock = 0
        self.evictions = 0

    @classmethod
    def for_budget(cls, cache: KVCache, *, budget_bytes: int, feature_dim: int = 0) -> PrefixCache | None:
        """A cache shaped like ``cache`` holding as many blocks as ``budget_bytes`` allow (None: not one)."""
        heads, _, head_dim = cache.k[0].shape[1:]
        block = cache.page_positions
        per_block = (2 * len(cache.k) * heads * head_dim + feature_dim) * block * 4
        capacity = budget_bytes // per_block
        if capacity < 1:
            return None
        return cls(
            n_layers=len(cache.k),
            n_kv_heads=heads,
            head_dim=head_dim,
            block_tokens=block,
            capacity_blocks=capacity,
            feature_dim=feature_dim,
        )

    @property
    def blocks(self) -> int:
        """Blocks held now (never more than ``capacity_blocks``)."""
        return len(self._blocks)

    @property
    def feature_dim(self) -> int:
        return 0 if self._features is None else self._features.shape[-1]

    def lookup(self, tokens: Sequence[int], *, max_positions: int, need_features: bool) -> Hit:
        """The longest cached beginning of ``tokens`` of at most ``max_positions`` positions.

        With ``need_features`` the hit stops at the first block cached without features.
        """
        found: list[_Block] = []
        parent: bytes | None = None
        size = self.block_tokens
        for end in range(size, min(max_positions, len(tokens)) + 1, size):
            chunk = tuple(tokens[end - size : end])
            block = self._blocks.get(_key(parent, chunk))
            if block is None or block.tokens != chunk or (need_features and not block.has_features):
                break
            found.append(block)
            parent = block.key
        self._clock += 1
        for block in found:
            block.last_used = self._clock
            block.reused = True
        return Hit(tuple(found), size)

    def load(self, hit: Hit, cache: KVCache, slot: int) -> torch.Tensor | None:
        """Copy the hit's keys and values into ``slot`` at positions ``[0, hit.tokens)``.

        Returns their feature rows ``[hit.tokens, feature_dim]`` when the blocks have them.
        """
        if not hit.blocks:
            return None
        index = torch.tensor([b.index for b in hit.blocks], dtype=torch.long)
        n = hit.tokens
        for layer in range(self._n_layers):
            for pool, target in ((self._k[layer], cache.k[layer]), (self._v[layer], cache.v[layer])):
                # [blocks, heads, block, dim] -> [heads, blocks * block, dim]
                rows = pool.index_select(0, index).transpose(0, 1).reshape(pool.shape[1], n, pool.shape[3])
                target[slot, :, :n] = rows
        if self._features is None or not all(b.has_features for b in hit.blocks):
            return None
        return self._features.index_select(0, index).reshape(n, -1).clone()

    def store(
        self,
        tokens: Sequence[int],
        cache: KVCache,
        slot: int,
        *,
        features: torch.Tensor | None = None,
        features_from: int = 0,
    ) -> int:
        """Enter the whole blocks of ``tokens`` (whose keys and values are final in ``slot``).

        ``features``: the feature rows of positions ``[features_from, len(tokens))``, if
        the request computed them. Blocks already cached are kept (and refreshed); a
        block cached without features gains them. Returns the blocks newly entered.
        """
        self._clock += 1
        entered = 0
        parent: bytes | None = None
        for start in range(0, len(tokens) - self.block_tokens + 1, self.block_tokens):
            feature_rows = None
            if features is not None and start >= features_from:
                feature_rows = features[start - features_from : start - features_from + self.block_tokens]
            key, new = self._enter(tokens, start, parent, cache, slot, feature_rows)
            if key is None:
                break
            entered += new
            parent = key
        return entered

    def extend(
        self,
        tokens: Sequence[int],
        cache: KVCache,
        slot: int,
        *,
        start: int,
        parent: bytes | None,
        features: torch.Tensor | None = None,
    ) -> tuple[int, bytes | None]:
        """Enter the whole blocks of ``tokens`` from position ``start`` on, continuing the chain
        whose last block (ending at ``start``) is ``parent`` (None when ``start`` is 0).

        What a request calls as its positions become final, so the blocks before ``start``
        are not hashed again. ``features``: the rows of positions ``[start, len(tokens))``, if
        computed. Returns how far the chain now reaches and its last block's key; it stops
        early (the key then that of the last block entered or found) when no block can be
        allocated or a digest collides, and reaches nothing past ``start`` (key None) when
        ``parent`` was evicted: that chain can no longer be continued.
        """
        if parent is not None and parent not in self._blocks:
            return start, None
        self._clock += 1
        size = self.block_tokens
        reached = start
        while reached + size <= len(tokens):
            rows = None
            if features is not None and features.shape[0] >= reached - start + size:
                rows = features[reached - start : reached - start + size]
            key, _ = self._enter(tokens, reached, parent, cache, slot, rows)
            if key is None:
                break
            parent, reached = key, reached + size
        return reached, parent

    def _enter(
        self,
        tokens: Sequence[int],
        start: int,
        parent: bytes | None,
        cache: KVCache,
        slot: int,
        features: torch.Tensor | None,
    ) -> tuple[bytes | None, int]:
        """The block of ``tokens[start:start + block]`` after ``parent``: found, or entered from
        ``slot``. Returns its key (None when it cannot be cached) and 1 if it is new."""
        chunk = tuple(tokens[start : start + self.block_tokens])
        key = _key(parent, chunk)
        block = self._blocks.get(key)
        new = 0
        if block is not None and block.tokens != chunk:
            return None, 0  # a digest collision: keep the block that is there
        if block is None:
            index = self._allocate(protect=parent)
            if index is None:
                return None, 0
            block = _Block(key, parent, chunk, index, has_features=False)
            self._copy_in(block, cache, slot, start)
            self._blocks[key] = block
            if parent is not None:
                self._blocks[parent].children += 1
            new = 1
        if features is not None and self._features is not None and not block.has_features:
            self._features[block.index] = features
            block.has_features = True
        block.last_used = self._clock
        return key, new

    def _copy_in(self, block: _Block, cache: KVCache, slot: int, start: int) -> None:
        stop = start + self.block_tokens
        for layer in range(self._n_layers):
            self._k[layer][block.index] = cache.k[layer][slot, :, start:stop]
            self._v[layer][block.index] = cache.v[layer][slot, :, start:stop]

    def _allocate(self, *, protect: bytes | None) -> int | None:
        """A free block index, evicting the least recently used leaf if need be (never ``protect``)."""
        if self._free:
            return self._free.pop()
        leaves = [b for b in self._blocks.values() if b.children == 0 and b.key != protect]
        if not leaves:
            return None
        # Blocks never reused go first (most are one request's output), least recently used first.
        victim = min(leaves, key=lambda b: (b.reused, b.last_used))
        del self._blocks[victim.key]
        if victim.parent is not None and (parent := self._blocks.get(victim.parent)) is not None:
            parent.children -= 1
        self._forget_memory(victim.index)
        self.evictions += 1
        return victim.index

    def _forget_memory(self, index: int) -> None:
        """Give an evicted block's pages back; it reads as zeros until written again."""
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for tensor in range(2 * self._n_layers):
            start = tensor * self._kv_bytes + index * self._kv_block_bytes
            _release(self._memory, start, self._kv_block_bytes)
        if self._feature_block_bytes:
            start = 2 * self._n_layers * self._kv_bytes + index * self._feature_block_bytes
            _release(self._memory, start, self._feature_block_bytes)


def _release(memory: mmap.mmap, start: int, length: int) -> None:
    """MADV_DONTNEED the whole pages inside ``[start, start + length)``."""
    page = mmap.PAGESIZE
    first = math.ceil(start / page) * page
    last = (start + length) // page * page
    if last > first:
        memory.madvise(mmap.MADV_DONTNEED, first, last - first)


def _key(parent: bytes | None, tokens: tuple[int, ...]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(parent or b"\0" * 16)
    digest.update(array.array("q", tokens).tobytes())
    return digest.digest()
