"""Speculation at 4 concurrent streams: drafts verified in one shared pass vs no speculation.

In-process native engines (quantized weights, and the same with int8 activations;
2 threads, no prefix cache), 4 greedy requests at once on held-out prompts, each to
a fixed length; aggregate tokens/s with speculation off and with EAGLE-3, for
``speculate_max_decoding`` 1 (the default: with 4 decoding, all take the plain
batched step) and 4 (their drafts are verified together, rows padded to the longest
draft).

    python bench/shared_verification.py   # writes a section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from report_file import machine, replace_section
from serve_process import ROOT

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
from engines.native.eagle3.dataset import benchmark_prompts
from engines.native.engine import NativeEngine, NativeEngineConfig
from engines.native.matrices import WeightFormat

SECTION = "## Speculation at 4 streams, drafts verified together (bench/shared_verification.py)"


async def burst(
    engine: NativeEngine, prompts: list[str], method: SpeculationMethod, tokens: int
) -> tuple[float, float]:
    """(aggregate tokens/s, tokens per decode step) of the prompts run at once."""
    tokenizer = engine.tokenizer
    requests = [
        EngineRequest(
            request_id=RequestId(f"{method.value}-{i}-{time.monotonic_ns()}"),
            prompt_token_ids=tuple(
                TokenId(t) for t in tokenizer.encode(tokenizer.render_chat([ChatMessage("user", p)]))
            ),
            sampling=SamplingParams(temperature=0.0),
            stopping=StoppingParams(max_tokens=tokens, ignore_eos=True),
            speculation=SpeculationParams(method, 4),
        )
        for i, p in enumerate(prompts)
    ]

    async def one(request: EngineRequest) -> tuple[int, int]:
        count = steps = 0
        async for output in engine.generate(request):
            count += len(output.token_ids)
            if output.stats is not None:
                steps = output.stats.decode_steps
        return count, steps

    started = time.perf_counter()
    results = await asyncio.gather(*(one(r) for r in requests))
    elapsed = time.perf_counter() - started
    produced = sum(c for c, _ in results)
    return produced / elapsed, produced / max(1, sum(s for _, s in results))


async def run(reps: int, tokens: int, formats: list[WeightFormat]) -> str:
    prompts = benchmark_prompts()
    lines = [
        SECTION,
        "",
        f"`python bench/shared_verification.py`: 4 greedy requests at once, {tokens} tokens each, held-out",
        f"prompts (4 per rep, {reps} reps), in-process engines, 2 threads; weights "
        + ", ".join(f"`{f.value}`" for f in formats)
        + ".",
        "",
        "| weights | speculate_max_decoding | rep | off tok/s | EAGLE-3 tok/s | tokens per step "
        "| EAGLE-3 / off |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios: dict[tuple[str, int], list[float]] = {}
    for weights in formats:
        for limit in (1, 4):
            engine = NativeEngine(
                NativeEngineConfig(
                    weights=weights,
                    max_batch_size=4,
                    context_length=1024,
                    prefix_cache_mb=0,
                    speculate_max_decoding=limit,
                    threads=2,
                )
            )
            await engine.start()
            try:
                for rep in range(reps):
                    chosen = prompts[rep * 4 : rep * 4 + 4]
                    off, _ = await burst(engine, chosen, SpeculationMethod.OFF, tokens)
                    on, per_step = await burst(engine, chosen, SpeculationMethod.EAGLE3, tokens)
                    ratios.setdefault((weights.value, limit), []).append(on / off)
                    lines.append(
                        f"| {weights.value} | {limit} | {rep + 1} | {off:.1f} | {on:.1f} | {per_step:.2f} "
                        f"| {on / off:.2f} |"
                    )
            finally:
                await engine.shutdown()
    lines += [
        "",
        "Mean EAGLE-3 / off with the drafts of all 4 verified together (speculate_max_decoding 4): "
        + "; ".join(
            f"`{name}` {sum(values) / len(values):.2f}x"
            for (name, limit), values in ratios.items()
            if limit == 4
        )
        + ". The default stays at 1 (speculate only while one request decodes) while that is below 1.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument(
        "--weights", default="q,q8act", help="comma-separated weight formats to measure (default q,q8act)"
    )
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the doc")
    args = parser.parse_args()
    formats = [WeightFormat(name) for name in args.weights.split(",")]
    section = asyncio.run(run(args.reps, args.tokens, formats))
    print(section)
    if not args.no_doc:
        replace_section(args.out, section)


if __name__ == "__main__":
    main()
