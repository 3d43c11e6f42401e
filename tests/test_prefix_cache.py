"""Prefix caching: reused keys and values give the same logits and tokens, within a bounded cache.

The unit tests drive ``PrefixCache`` over a small ``KVCache``; the engine tests
run the real model twice, with the cache and without it, and compare.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
import torch
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.contract import (
    ChatMessage,
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    TokenId,
)
from engines.native import prefix_cache
from engines.native.engine import NativeEngine, NativeEngineConfig
from engines.native.kv_cache import KVCache
from engines.native.prefix_cache import PrefixCache
from tests.engine_runs import Run, drain
from tests.live_servers import LiveServer
from tests.streams import collect

BLOCK = 16


def small_cache(slots: int = 2, max_seq: int = 128) -> KVCache:
    cache = KVCache(n_layers=2, max_slots=slots, n_kv_heads=2, max_seq=max_seq, head_dim=64)
    assert cache.page_positions == BLOCK
    return cache


def fill(cache: KVCache, slot: int, length: int, seed: int) -> None:
    """Distinct keys and values at every position of ``slot`` (what a prefill would have written)."""
    generator = torch.Generator().manual_seed(seed)
    for layer in range(len(cache.k)):
        cache.k[layer][slot, :, :length] = torch.randn(
            cache.k[layer][slot, :, :length].shape, generator=generator
        )
        cache.v[layer][slot, :, :length] = torch.randn(
            cache.v[layer][slot, :, :length].shape, generator=generator
        )


def fill_from_tokens(cache: KVCache, slot: int, tokens: list[int]) -> None:
    """Keys and values that depend on each position's token and place only, as a model's would on
    one prefix: the same prefix always gives the same values."""
    values = torch.tensor(tokens, dtype=torch.float32) + torch.arange(len(tokens)) / 1000
    for layer in range(len(cache.k)):
        cache.k[layer][slot, :, : len(tokens)] = (values + layer)[None, :, None]
        cache.v[layer][slot, :, : len(tokens)] = (-values - layer)[None, :, None]


def same_positions(cache: KVCache, a: int, b: int, length: int) -> bool:
    return all(
        torch.equal(t[a, :, :length], t[b, :, :length])
        for layer in range(len(cache.k))
        for t in (cache.k[layer], cache.v[layer])
    )


def make_prefix(capacity: int, feature_dim: int = 0) -> PrefixCache:
    return PrefixCache(
        n_layers=2,
        n_kv_heads=2,
        head_dim=64,
        block_tokens=BLOCK,
        capacity_blocks=capacity,
        feature_dim=feature_dim,
    )


# --- the cache itself -------------------------------------------------------------------------------


def test_a_stored_prefix_is_found_and_copied_exactly() -> None:
    cache, prefix = small_cache(), make_prefix(8)
    tokens = list(range(100, 150))  # 50 tokens: 3 whole blocks
    fill(cache, 0, 50, seed=1)
    assert prefix.store(tokens, cache, 0) == 3
    hit = prefix.lookup(tokens, max_positions=49, need_features=False)
    assert hit.tokens == 48
    prefix.load(hit, cache, 1)
    assert same_positions(cache, 0, 1, 48)
    # A prompt that shares two blocks, then differs.
    other = tokens[:40] + [7] * 20
    assert prefix.lookup(other, max_positions=59, need_features=False).tokens == 32
    # At least one position is always left to compute, and a different first block shares nothing.
    assert prefix.lookup(tokens[:48], max_positions=47, need_features=False).tokens == 32
    assert prefix.lookup([1, *tokens[1:]], max_positions=49, need_features=False).tokens == 0


def test_a_chain_extended_piece_by_piece_is_the_one_stored_at_once() -> None:
    cache, prefix = small_cache(), make_prefix(4)
    tokens = list(range(300, 364))  # 4 blocks
    fill_from_tokens(cache, 0, tokens)
    reached, key = prefix.extend(tokens[:32], cache, 0, start=0, parent=None)
    assert reached == 32 and key is not None
    reached, key = prefix.extend(tokens, cache, 0, start=32, parent=key)
    assert reached == 64 and prefix.blocks == 4
    assert prefix.store(tokens, cache, 0) == 0  # the same chain: nothing new
    assert prefix.lookup([*tokens, 0], max_positions=64, need_features=False).tokens == 64
    # A chain whose last block was evicted cannot be continued.
    other = list(range(900, 916))
    fill_from_tokens(cache, 1, other)
    prefix.store(other, cache, 1)  # evicts the least recently used leaf: the chain's last block
    assert prefix.extend([*tokens, *range(16)], cache, 0, start=64, parent=key) == (64, None)


def test_a_block_is_found_only_after_the_same_whole_prefix() -> None:
    cache, prefix = small_cache(), make_prefix(8)
    fill(cache, 0, 32, seed=2)
    prefix.store(list(range(32)), cache, 0)
    # The second block's tokens alone, after another first block, are not a hit.
    shifted = [9] * 16 + list(range(16, 32)) + [0]
    assert prefix.lookup(shifted, max_positions=32, need_features=False).tokens == 0


def test_a_digest_collision_never_hands_out_another_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefix_cache, "_key", lambda parent, tokens: b"same" * 4)
    cache, prefix = small_cache(), make_prefix(8)
    fill(cache, 0, 16, seed=3)
    prefix.store(list(range(16)), cache, 0)
    other = [*range(50, 66), 1]
    assert prefix.lookup(other, max_positions=16, need_features=False).tokens == 0  # tokens are compared
    assert prefix.store(other[:16], cache, 1) == 0  # and the cached block is not replaced


def test_features_come_back_with_their_blocks_and_are_required_when_asked() -> None:
    cache, prefix = small_cache(), make_prefix(8, feature_dim=6)
    fill(cache, 0, 48, seed=4)
    features = torch.randn(48, 6)
    prefix.store(list(range(32)), cache, 0, features=features[:32])
    prefix.store(list(range(48)), cache, 0)  # the third block without features
    with_features = prefix.lookup(list(range(49)), max_positions=48, need_features=True)
    assert with_features.tokens == 32
    loaded = prefix.load(with_features, cache, 1)
    assert loaded is not None and torch.equal(loaded, features[:32])
    assert prefix.lookup(list(range(49)), max_positions=48, need_features=False).tokens == 48


def test_the_cache_never_grows_past_its_capacity_and_evicts_least_recently_used_leaves() -> None:
    cache, prefix = small_cache(slots=2, max_seq=128), make_prefix(5)
    rng = random.Random(5)
    prompts = [[rng.randrange(1000) for _ in range(64)] for _ in range(6)]
    # Shared beginnings make chains with branches.
    for i in range(1, 6, 2):
        prompts[i][:32] = prompts[i - 1][:32]
    for round_ in range(40):
        tokens = rng.choice(prompts)[: rng.choice([16, 32, 48, 64])]
        fill_from_tokens(cache, 0, tokens)
        if rng.random() < 0.5:
            prefix.store(tokens, cache, 0)
        else:
            hit = prefix.lookup([*tokens, 0], max_positions=len(tokens), need_features=False)
            prefix.load(hit, cache, 1)
            assert same_positions(cache, 0, 1, hit.tokens), round_  # what comes back is what was stored
        assert prefix.blocks <= prefix.capacity_blocks
        # Only leaves are evicted: every cached block's parent is still cached.
        for block in prefix._blocks.values():
            assert block.parent is None or block.parent in prefix._blocks
    assert prefix.evictions > 0


def test_the_least_recently_used_prefix_goes_first() -> None:
    cache, prefix = small_cache(), make_prefix(2)
    for seed, first in enumerate((100, 200)):
        fill(cache, 0, 16, seed=seed)
        prefix.store(list(range(first, first + 16)), cache, 0)
    assert (
        prefix.lookup(list(range(100, 117)), max_positions=16, need_features=False).tokens == 16
    )  # touch it
    fill(cache, 0, 16, seed=9)
    prefix.store(list(range(300, 316)), cache, 0)
    assert prefix.lookup(list(range(200, 217)), max_positions=16, need_features=False).tokens == 0  # evicted
    assert prefix.lookup(list(range(100, 117)), max_positions=16, need_features=False).tokens == 16


def test_a_reused_prefix_survives_a_flood_of_blocks_nobody_reuses() -> None:
    cache, prefix = small_cache(), make_prefix(4)
    system = list(range(500, 532))  # two blocks, reused below
    fill_from_tokens(cache, 0, system)
    prefix.store(system, cache, 0)
    assert prefix.lookup([*system, 1], max_positions=32, need_features=False).tokens == 32
    for flood in range(10):  # one-off outputs, each two blocks, newer than the system prompt
        tokens = [10_000 + flood * 100 + i for i in range(32)]
        fill_from_tokens(cache, 0, tokens)
        prefix.store(tokens, cache, 0)
    assert prefix.blocks == prefix.capacity_blocks and prefix.evictions >= 18
    assert prefix.lookup([*system, 1], max_positions=32, need_features=False).tokens == 32


# --- the engine, with and without the cache ---------------------------------------------------------


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[NativeEngine, NativeEngine]]:
    """(without a prefix cache, with one); both greedy-identical engines of the real model."""
    built = [
        NativeEngine(NativeEngineConfig(max_batch_size=4, context_length=1024, prefix_cache_mb=mb))
        for mb in (0, 64)
    ]
    for engine in built:
        asyncio.run(engine.start())
    yield built[0], built[1]
    for engine in built:
        asyncio.run(engine.shutdown())


_ids = iter(range(1_000_000))
SYSTEM = "You are a careful assistant. Answer briefly and precisely, in plain words. " * 6


def prompt(engine: NativeEngine, question: str, system: str = SYSTEM) -> list[TokenId]:
    tokenizer = engine.tokenizer
    return list(
        tokenizer.encode(
            tokenizer.render_chat([ChatMessage("system", system), ChatMessage("user", question)])
        )
    )


async def run(
    engine: NativeEngine,
    ids: list[TokenId],
    *,
    max_tokens: int = 12,
    speculation: SpeculationMethod | None = None,
) -> Run:
    request = EngineRequest(
        request_id=RequestId(f"p{next(_ids)}"),
        prompt_token_ids=tuple(ids),
        sampling=SamplingParams(temperature=0.0),
        stopping=StoppingParams(max_tokens=max_tokens, ignore_eos=True),
        logprobs=True,
        speculation=None if speculation is None else SpeculationParams(speculation, 4),
    )
    return await drain(engine.generate(request))


def assert_same(cold: Run, warm: Run) -> None:
    assert warm.tokens == cold.tokens
    assert warm.logprobs == pytest.approx(cold.logprobs, abs=1e-3)


def cached_blocks(length: int) -> int:
    """Positions a warm request of ``length`` prompt tokens reuses: whole blocks, one token left."""
    return (length - 1) // BLOCK * BLOCK


@pytest.mark.parametrize("speculation", [SpeculationMethod.OFF, SpeculationMethod.EAGLE3])
def test_cold_warm_and_partly_shared_prompts_give_the_same_output(
    engines: tuple[NativeEngine, NativeEngine], speculation: SpeculationMethod
) -> None:
    plain, cached = engines
    system = f"{SYSTEM} ({speculation.value})"
    first = prompt(cached, "What is the capital of France?", system)
    second = prompt(cached, "Name three primary colours.", system)
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)

    async def scenario() -> None:
        for ids, expected_cached in (
            (first, 0),  # cold
            (first, cached_blocks(len(first))),  # warm: all but the last partial block
            (second, shared // BLOCK * BLOCK),  # the system prompt's blocks
        ):
            reference = await run(plain, ids, speculation=speculation)
            result = await run(cached, ids, speculation=speculation)
            assert_same(reference, result)
            assert reference.stats.cached_prompt_tokens == 0
            assert result.stats.cached_prompt_tokens == expected_cached

    asyncio.run(scenario())


def test_eagle3_drafts_on_a_reused_prefix(engines: tuple[NativeEngine, NativeEngine]) -> None:
    _, cached = engines
    ids = prompt(cached, "Write a short story about a lighthouse keeper.", f"{SYSTEM} (drafts)")

    async def scenario() -> tuple[Run, Run]:
        return (
            await run(cached, ids, max_tokens=40, speculation=SpeculationMethod.EAGLE3),
            await run(cached, ids, max_tokens=40, speculation=SpeculationMethod.EAGLE3),
        )

    cold, warm = asyncio.run(scenario())
    assert warm.stats.cached_prompt_tokens > 0
    assert_same(cold, warm)
    # The head saw the reused positions' features: it drafts as well as on a cold prompt.
    assert warm.stats.accepted_draft_tokens == cold.stats.accepted_draft_tokens > 0


def test_the_next_turn_reuses_the_previous_answer(engines: tuple[NativeEngine, NativeEngine]) -> None:
    plain, cached = engines

    async def scenario() -> None:
        turn = prompt(cached, "Tell me about the moon.", f"{SYSTEM} (turns)")
        answer = await run(cached, turn, max_tokens=24)
        follow_up = [
            *turn,
            *answer.tokens,
            *cached.tokenizer.encode("<|im_end|>\n<|im_start|>user\nAnd the sun?"),
        ]
        reference = await run(plain, follow_up)
        result = await run(cached, follow_up)
        assert_same(reference, result)
        # The answer's keys were stored when the first turn ended (all but its newest token).
        assert result.stats.cached_prompt_tokens == (len(turn) + len(answer.tokens) - 1) // BLOCK * BLOCK

    asyncio.run(scenario())


def test_eviction_under_pressure_keeps_outputs_and_the_budget() -> None:
    plain = NativeEngine(NativeEngineConfig(max_batch_size=2, context_length=512, prefix_cache_mb=0))
    # 2 MiB holds two blocks of this model (about 0.85 MiB each with EAGLE-3 features).
    tight = NativeEngine(NativeEngineConfig(max_batch_size=2, context_length=512, prefix_cache_mb=2))

    async def scenario() -> None:
        await plain.start()
        await tight.start()
        try:
            prefix = tight._scheduler._prefix if tight._scheduler is not None else None
            assert prefix is not None and prefix.capacity_blocks == 2
            questions = ["Say hi.", "Say bye.", "Count to three.", "Say hi."]
            for round_, question in enumerate(questions * 2):
                ids = prompt(tight, question, f"Round {round_ % 3}. {SYSTEM}")
                assert_same(await run(plain, ids), await run(tight, ids))
                assert prefix.blocks <= prefix.capacity_blocks
            assert prefix.evictions > 0
        finally:
            await plain.shutdown()
            await tight.shutdown()

    asyncio.run(scenario())


def test_a_cancelled_reader_leaves_the_cached_blocks_intact(
    engines: tuple[NativeEngine, NativeEngine],
) -> None:
    plain, cached = engines
    ids = prompt(cached, "List the planets of the solar system.", f"{SYSTEM} (cancel)")

    async def scenario() -> None:
        await run(cached, ids, max_tokens=2)  # caches the prompt
        reader = cached.generate(
            EngineRequest(
                request_id=RequestId(f"p{next(_ids)}"),
                prompt_token_ids=tuple(ids),
                sampling=SamplingParams(temperature=0.0),
                stopping=StoppingParams(max_tokens=200, ignore_eos=True),
            )
        )
        first = await reader.__anext__()  # it reused the blocks and produced a token
        assert first.token_ids
        await reader.aclose()  # cancelled mid-generation
        reference = await run(plain, ids)
        again = await run(cached, ids)
        assert again.stats.cached_prompt_tokens == cached_blocks(len(ids))
        assert_same(reference, again)

    asyncio.run(scenario())


async def test_grpc_usage_reports_cached_prompt_tokens(live_server: LiveServer) -> None:
    request = generation_pb2.GenerateRequest(
        text="The prefix cache test. " * 30,
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=3, ignore_eos=True),
    )
    async with aio.insecure_channel(live_server.address) as channel:
        generation = generation_pb2_grpc.GenerationServiceStub(channel)
        cold = await collect(generation.Generate(request))
        warm = await collect(generation.Generate(request))
    assert cold.finished is not None and warm.finished is not None
    prompt_tokens = warm.finished.usage.prompt_tokens
    assert cold.finished.usage.cached_prompt_tokens == 0
    assert warm.finished.usage.cached_prompt_tokens == cached_blocks(prompt_tokens)
    assert warm.token_ids == cold.token_ids
