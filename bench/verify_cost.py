"""What speculation pays per step: a k-token verification pass against a 1-token decode step.

Measured in-process on the native engine's model, not through gRPC, so the
ratio is the model's alone. If verifying k+1 tokens costs about as much as
decoding one, every accepted draft token is nearly free; if it costs 1.5x, a
step must yield well over 1.5 tokens before speculation pays.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engines.native.kv_cache import KVCache
from engines.native.matrices import WeightFormat, set_kernel_threads
from engines.native.model import Transformer
from engines.native.weights import default_gguf_path, load_weights


@dataclass(frozen=True, slots=True)
class VerifyCost:
    weights: str
    position: int
    """Tokens in the cache before the timed passes."""
    draft_length: int
    step_ms: float
    """Median of one ``[1, 1]`` forward pass (a plain decode step)."""
    verify_ms: float
    """Median of one ``[1, draft_length + 1]`` pass with every position's logits (a verification)."""
    reps: int
    threads: int

    @property
    def ratio(self) -> float:
        return self.verify_ms / self.step_ms


def build_model(context: int, weights_format: WeightFormat) -> tuple[Transformer, KVCache]:
    """The target model and a one-slot cache, built as ``NativeEngine._build`` builds them.

    The only place in the benchmarks that knows how a model is made from the GGUF.
    """
    weights = load_weights(default_gguf_path(), None, None)
    config = weights.config
    with torch.inference_mode():
        model = Transformer.from_weights(
            config, weights.state_dict, max_seq=context, weight_format=weights_format
        )
        cache = KVCache(
            n_layers=config.n_layers,
            max_slots=1,
            n_kv_heads=config.n_kv_heads,
            max_seq=context,
            head_dim=config.head_dim,
        )
    return model, cache


def measure_verify_cost(
    prefix: Sequence[int],
    *,
    weights: Sequence[WeightFormat],
    draft_length: int = 4,
    reps: int = 50,
    threads: int = 2,
) -> tuple[VerifyCost, ...]:
    """Prefill ``prefix`` into slot 0 of a model per weight format, then time decode vs verification
    passes at that position.

    Every round runs a step and a verification on each model in turn (after a few untimed warm-up
    rounds), so that load from other processes hits every kind of pass and every format alike;
    each rewrites the same cache positions, so the state never advances. Returns the medians, one
    result per format in the order given.
    """
    torch.set_num_threads(threads)
    if any(w.keeps_blocks for w in weights):
        set_kernel_threads(threads)
    position = len(prefix)
    models = [build_model(position + draft_length + 8, w) for w in weights]
    one = torch.tensor([[prefix[-1]]], dtype=torch.long)
    several = torch.tensor([list(prefix[-1:]) * (draft_length + 1)], dtype=torch.long)
    step: list[list[float]] = [[] for _ in weights]
    verify: list[list[float]] = [[] for _ in weights]
    with torch.inference_mode():
        for model, cache in models:
            model(torch.tensor([list(prefix)], dtype=torch.long), [0], [0], cache)
        for rep in range(reps + 3):
            for i, (model, cache) in enumerate(models):
                start = time.perf_counter()
                model(one, [0], [position], cache)
                middle = time.perf_counter()
                model(several, [0], [position], cache, all_logits=True)
                end = time.perf_counter()
                if rep >= 3:
                    step[i].append(middle - start)
                    verify[i].append(end - middle)
    return tuple(
        VerifyCost(
            weights=w.value,
            position=position,
            draft_length=draft_length,
            step_ms=statistics.median(step[i]) * 1000,
            verify_ms=statistics.median(verify[i]) * 1000,
            reps=reps,
            threads=threads,
        )
        for i, w in enumerate(weights)
    )
