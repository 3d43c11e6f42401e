"""The KV cache's memory: paid for by the page as positions are written, given back when a slot ends."""

from __future__ import annotations

import torch

from engines.native.kv_cache import KVCache, SlotAllocator, make_layout

# SmolLM2's shape at its full context: 3 GB if every slot's pages were resident.
SHAPE = {"n_layers": 30, "max_slots": 8, "n_kv_heads": 3, "max_seq": 8192, "head_dim": 64}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def fill(cache: KVCache, slot: int, tokens: int) -> None:
    layout = make_layout([slot], [0], tokens)
    values = torch.ones(1, SHAPE["n_kv_heads"], tokens, SHAPE["head_dim"])
    for layer in range(SHAPE["n_layers"]):
        cache.write(layer, layout, values, values)


def test_memory_follows_the_positions_written_and_returns_on_release() -> None:
    before = rss_mb()
    cache = KVCache(**SHAPE)
    for slot in range(SHAPE["max_slots"]):
        fill(cache, slot, 40)
    written = rss_mb() - before
    # 8 slots x 48 positions (whole pages) x 45 KiB = 17 MiB; huge pages would make it ~2.8 GB.
    assert written < 64, f"{written:.0f} MiB resident after 8 x 40 positions"
    expected = SHAPE["max_slots"] * 48 * cache.position_bytes() / 2**20
    for slot in range(SHAPE["max_slots"]):
        cache.release(slot)
    freed = before + written - rss_mb()
    assert freed > 0.6 * expected, f"release gave back {freed:.1f} of {expected:.1f} MiB"
    keys, values = cache.read(5, make_layout([3], [0], 40))
    assert not keys.any() and not values.any(), "a released slot reads as zeros"


def test_release_leaves_other_slots_alone() -> None:
    cache = KVCache(n_layers=2, max_slots=3, n_kv_heads=3, max_seq=1000, head_dim=64)  # ragged positions
    layout = make_layout([0, 1, 2], [0, 0, 0], 10)
    values = torch.arange(3 * 3 * 10 * 64, dtype=torch.float32).reshape(3, 3, 10, 64) + 1
    for layer in range(2):
        cache.write(layer, layout, values, values)
    cache.release(1)
    keys, _ = cache.read(1, layout)
    assert torch.equal(keys[0], values[0]) and torch.equal(keys[2], values[2])
    assert not keys[1].any()


def test_allocator_keeps_reservations_within_the_budget() -> None:
    slots = SlotAllocator(4, budget_positions=100, page_positions=16)
    first = slots.take(40)  # 48 positions of pages
    assert first == 0
    assert slots.take(60) is None  # 64 more would pass 100
    second = slots.take(30)
    assert second == 1 and slots.reserved_positions == 80
    slots.give_back(first)
    assert slots.take(60) == 0
    unlimited = SlotAllocator(2)
    assert unlimited.take(10**9) == 0 and unlimited.take(1) == 1 and unlimited.take(1) is None


def test_a_request_of_the_whole_budget_fits_an_empty_cache() -> None:
    """The context is capped to the budget; rounding up to pages must not make such a request wait forever."""
    slots = SlotAllocator(2, budget_positions=182, page_positions=16)
    assert slots.take(182) == 0
    assert slots.take(1) is None
