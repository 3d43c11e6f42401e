"""EAGLE-3 draft length and confidence threshold, re-measured on the quantized engine.

In-process native engines (quantized weights, 2 threads), batch 1, greedy,
the validation half of the held-out prompts (never trained on; the final
benchmarks use the other half), a fixed number of new tokens: end-to-end
tokens/s of every (min_confidence, draft_length) pair against no speculation
on the same engine, prompt by prompt (every arm runs each prompt before the
next prompt, so drift hits all arms alike). Every arm's output must equal no
speculation's.

    python bench/eagle3_tuning.py   # writes a section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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
from engines.native.eagle3.dataset import validation_prompts
from engines.native.engine import NativeEngine, NativeEngineConfig

SECTION = "## EAGLE-3 draft length and confidence on the quantized engine (bench/eagle3_tuning.py)"
CONFIDENCES = (0.3, 0.5, 0.7)
LENGTHS = (2, 3, 4, 6)


async def timed(
    engine: NativeEngine, ids: tuple[TokenId, ...], speculation: SpeculationParams, tokens: int
) -> tuple[float, list[TokenId], int]:
    request = EngineRequest(
        request_id=RequestId(f"tune-{time.monotonic_ns()}"),
        prompt_token_ids=ids,
        sampling=SamplingParams(temperature=0.0),
        stopping=StoppingParams(max_tokens=tokens, ignore_eos=True),
        speculation=speculation,
    )
    out: list[TokenId] = []
    steps = 0
    started = time.perf_counter()
    async for output in engine.generate(request):
        out += output.token_ids
        if output.stats is not None:
            steps = output.stats.decode_steps
    return time.perf_counter() - started, out, steps


async def run(prompts: int, tokens: int) -> str:
    texts = validation_prompts()[:prompts]
    rows: list[str] = []
    for confidence in CONFIDENCES:
        engine = NativeEngine(
            NativeEngineConfig(
                max_batch_size=1,
                context_length=1024,
                prefix_cache_mb=0,
                threads=2,
                draft_min_confidence=confidence,
            )
        )
        await engine.start()
        try:
            tokenizer = engine.tokenizer
            off_s: list[float] = []
            arms: dict[int, tuple[list[float], list[int], int]] = {n: ([], [], 0) for n in LENGTHS}
            for text in texts:
                ids = tuple(
                    TokenId(t) for t in tokenizer.encode(tokenizer.render_chat([ChatMessage("user", text)]))
                )
                seconds, reference, _ = await timed(
                    engine, ids, SpeculationParams(SpeculationMethod.OFF, 1), tokens
                )
                off_s.append(seconds)
                for length in LENGTHS:
                    spent, output, steps = await timed(
                        engine, ids, SpeculationParams(SpeculationMethod.EAGLE3, length), tokens
                    )
                    assert output == reference, f"EAGLE-3 changed the output (length {length})"
                    times, step_counts, _ = arms[length]
                    times.append(spent)
                    step_counts.append(steps)
            off_rate = len(texts) * tokens / sum(off_s)
            for length in LENGTHS:
                times, step_counts, _ = arms[length]
                rate = len(texts) * tokens / sum(times)
                per_step = len(texts) * tokens / sum(step_counts)
                ratios = [o / t for o, t in zip(off_s, times, strict=True)]
                rows.append(
                    f"| {confidence} | {length} | {per_step:.2f} | {rate:.1f} | {off_rate:.1f} | "
                    f"{rate / off_rate:.2f} | {statistics.median(ratios):.2f} |"
                )
        finally:
            await engine.shutdown()
    return "\n".join(
        [
            SECTION,
            "",
            f"`python bench/eagle3_tuning.py`: {len(texts)} validation prompts, {tokens} greedy tokens each,",
            "batch 1, in-process engine, quantized weights, 2 threads; every arm's output equals no",
            "speculation's.",
            "",
            "| min_confidence | draft_length | tokens/step | EAGLE-3 tok/s | off tok/s | speedup "
            "| median per-prompt |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Machine: {machine()}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the doc")
    args = parser.parse_args()
    section = asyncio.run(run(args.prompts, args.tokens))
    print(section)
    if not args.no_doc:
        replace_section(args.out, section)


if __name__ == "__main__":
    main()
