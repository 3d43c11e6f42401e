"""A slot-based KV cache: each in-flight request owns one slot (a row of every layer's cache)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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


class KVCache:
    """Per layer, keys and values shaped ``[max_slots, n_kv_heads, max_seq, head_dim]``."""

    def __init__(
        self, *, n_layers: int, max_slots: int, n_kv_heads: int, max_seq: int, head_dim: int
    ) -> None:
        shape = (max_slots, n_kv_heads, max_seq, head_dim)
        # numpy.zeros uses calloc: the pages stay untouched (and unpaid-for) until a
        # slot actually reaches them, whereas torch.zeros writes every byte up front
        # (3.4 GB for 8 slots of 8192 positions). Zeros, not garbage, matter: a NaN in
        # a masked position would still poison the attention-weighted sum of values.
        self.k = [torch.from_numpy(np.zeros(shape, dtype=np.float32)) for _ in range(n_layers)]
        self.v = [torch.from_numpy(np.zeros(shape, dtype=np.float32)) for _ in range(n_layers)]
        self.max_slots = max_slots
        self.max_seq = max_seq

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
    """Hands out the lowest free slot, which keeps busy slots consecutive (views, not gathers)."""

    def __init__(self, max_slots: int) -> None:
        self._free = list(range(max_slots))

    @property
    def free_count(self) -> int:
        """Slots available now."""
        return len(self._free)

    def take(self) -> int:
        """Reserve a slot; raises IndexError when none is free."""
        self._free.sort()
        return self._free.pop(0)

    def give_back(self, slot: int) -> None:
        """Return ``slot`` for reuse. Its stale contents are masked, never read."""
        self._free.append(slot)
