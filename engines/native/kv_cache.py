"""A slot-based KV cache: each in-flight request owns one slot (a row of every layer's cache).

Memory: the cache is one anonymous mapping, reserved for every slot at its
full context but paid for only where written. Transparent huge pages are
turned off for it (otherwise the first token written to a slot's head makes
a whole 2 MiB page resident: 2.8 GB after 8 one-token requests), so it grows
4 KiB at a time (16 positions of one head); a finished request's pages go
back to the system at once. ``SlotAllocator`` keeps the positions that
requests may reach within a memory budget (``--kv-cache-mb``).
"""

from __future__ import annotations

import math
import mmap
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class BatchLayout:
    """Where the rows of one forward pass live in the cache.

    Row ``b`` holds ``n_tokens`` consecutive tokens of slot ``slots[b]``,
    starting at position ``starts[b]``. Built once per forward pass and shared
    by every layer.
    """

    slot_list: tuple[int, ...]
    starts: tuple[int, ...]
    n_tokens: int
    slots: torch.Tensor
    """[B] long."""
    positions: torch.Tensor
    """[B, T] long: the position of every token."""
    length: int
    """Attention reads cache positions ``[0, length)``: the longest prefix in use, not max_seq."""
    slot_range: tuple[int, int] | None
    """``(first, stop)`` when the slots are consecutive, so reads are views instead of gathers."""
    mask: torch.Tensor
    """[B, T, length] bool: True where a token may attend (its own slot's prefix, causally)."""


def make_layout(slots: Sequence[int], starts: Sequence[int], n_tokens: int) -> BatchLayout:
    """Describe a batch of rows; see ``BatchLayout``."""
    if len(slots) != len(starts) or not slots:
        raise ValueError("need one start position per slot, and at least one row")
    slot_list = tuple(slots)
    start_tensor = torch.tensor(starts, dtype=torch.long)
    positions = start_tensor[:, None] + torch.arange(n_tokens, dtype=torch.long)[None, :]
    length = max(starts) + n_tokens
    first = slot_list[0]
    consecutive = slot_list == tuple(range(first, first + len(slot_list)))
    mask = torch.arange(length, dtype=torch.long)[None, None, :] <= positions[:, :, None]
    return BatchLayout(
        slot_list=slot_list,
        starts=tuple(starts),
        n_tokens=n_tokens,
        slots=torch.tensor(slot_list, dtype=torch.long),
        positions=positions,
        length=length,
        slot_range=(first, first + len(slot_list)) if consecutive else None,
        mask=mask,
    )


def position_bytes(*, n_layers: int, n_kv_heads: int, head_dim: int) -> int:
    """Memory one position of one slot takes in every layer: fp32 keys and values."""
    return 2 * n_layers * n_kv_heads * head_dim * 4


class KVCache:
    """Per layer, keys and values shaped ``[max_slots, n_kv_heads, max_seq, head_dim]``."""

    def __init__(
        self, *, n_layers: int, max_slots: int, n_kv_heads: int, max_seq: int, head_dim: int
    ) -> None:
        # Each slot's region of a layer is whole pages, so a slot's pages can be given back
        # without touching a neighbour's: positions are allocated in whole pages of one head.
        self.page_positions = max(1, mmap.PAGESIZE // math.gcd(mmap.PAGESIZE, head_dim * 4))
        allocated = -(-max_seq // self.page_positions) * self.page_positions
        shape = (max_slots, n_kv_heads, allocated, head_dim)
        per_tensor = math.prod(shape) * 4
        # Anonymous memory reads as zeros until written, and pages given back with
        # MADV_DONTNEED read as zeros again. Zeros, not garbage, matter: a NaN in a
        # masked position would still poison the attention-weighted sum of values.
        # Private: MADV_DONTNEED on a shared mapping would keep the data (and the memory).
        self._memory = mmap.mmap(-1, 2 * n_layers * per_tensor, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_NOHUGEPAGE"):
            self._memory.madvise(mmap.MADV_NOHUGEPAGE)
        flat = torch.frombuffer(self._memory, dtype=torch.float32)
        tensors = flat.view(2 * n_layers, *shape)[:, :, :, :max_seq]
        self.k = [tensors[2 * i] for i in range(n_layers)]
        self.v = [tensors[2 * i + 1] for i in range(n_layers)]
        self.max_slots = max_slots
        self.max_seq = max_seq
        self._slot_bytes = per_tensor // max_slots
        self._tensor_bytes = per_tensor

    def position_bytes(self) -> int:
        """Memory one position of one slot takes in every layer (keys and values)."""
        heads, _, head_dim = self.k[0].shape[1:]
        return position_bytes(n_layers=len(self.k), n_kv_heads=heads, head_dim=head_dim)

    def release(self, slot: int) -> None:
        """Give ``slot``'s memory back to the system; it reads as zeros afterwards."""
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for tensor in range(2 * len(self.k)):
            # A slot's region is whole pages: positions x heads x head_dim x 4 bytes.
            start = tensor * self._tensor_bytes + slot * self._slot_bytes
            self._memory.madvise(mmap.MADV_DONTNEED, start, self._slot_bytes)

    def write(self, layer: int, layout: BatchLayout, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``/``v`` ([B, n_kv_heads, T, head_dim]) at each row's slot and positions."""
        if len(layout.slot_list) == 1:
            slot, start = layout.slot_list[0], layout.starts[0]
            stop = start + layout.n_tokens
            self.k[layer][slot, :, start:stop] = k[0]
            self.v[layer][slot, :, start:stop] = v[0]
            return
        # Advanced indices on dims 0 and 2 put the broadcast [B, T] dims first.
        index = (layout.slots[:, None], slice(None), layout.positions)
        self.k[layer][index] = k.transpose(1, 2)
        self.v[layer][index] = v.transpose(1, 2)

    def read(self, layer: int, layout: BatchLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, n_kv_heads, length, head_dim]`` of each row's slot."""
        k, v = self.k[layer], self.v[layer]
        if layout.slot_range is not None:
            first, stop = layout.slot_range
            return k[first:stop, :, : layout.length], v[first:stop, :, : layout.length]
        return (
            k[:, :, : layout.length].index_select(0, layout.slots),
            v[:, :, : layout.length].index_select(0, layout.slots),
        )


class SlotAllocator:
    """Hands out slots and keeps the positions they may reach within a budget.

    A request reserves the most positions it can reach (prompt plus max_tokens, capped by the
    context) when it takes a slot, so a running request never runs out of cache: one that does
    not fit waits until others finish. The lowest free slot is handed out first, which keeps
    busy slots consecutive (views, not gathers).
    """

    def __init__(self, max_slots: int, budget_positions: int | None = None, page_positions: int = 1) -> None:
        self._free = list(range(max_slots))
        self._budget = budget_positions
        self._page = page_positions
        self._reserved: dict[int, int] = {}
        self._reserved_total = 0  # sum of _reserved: one int, safe to read from another thread

    @property
    def free_count(self) -> int:
        """Slots available now."""
        return len(self._free)

    @property
    def reserved_positions(self) -> int:
        """Positions reserved by the slots in use (any thread may read it)."""
        return self._reserved_total

    @property
    def budget_positions(self) -> int | None:
        return self._budget

    def take(self, positions: int = 0) -> int | None:
        """Reserve a slot able to reach ``positions``; None when no slot or not enough budget is free."""
        needed = -(-positions // self._page) * self._page  # what the pages it writes will hold
        if self._budget is not None:
            # A request the context allows always fits an empty cache, rounding or not.
            needed = min(needed, self._budget)
        if not self._free:
            return None
        if self._budget is not None and self.reserved_positions + needed > self._budget:
            return None
        self._free.sort()
        slot = self._free.pop(0)
        self._reserved[slot] = needed
        self._reserved_total += needed
        return slot

    def give_back(self, slot: int) -> None:
        """Return ``slot`` for reuse. Its stale contents are masked, never read."""
        self._reserved_total -= self._reserved.pop(slot, 0)
        self._free.append(slot)
