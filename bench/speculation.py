"""Speculation on vs off in the native engine: same engine, same run, same prompts.

Greedy, 128 new tokens with ignore_eos, batch 1, repeated; checks the outputs
are identical and writes a table to docs/benchmarks.md (replacing its
speculation section). Not a test: timings are noisy; compare the ratios.

    .venv/bin/python bench/speculation.py [--reps 2] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from engines.contract import (
    ChatMessage,
    EngineRequest,
    FinishStats,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    TokenId,
)
from engines.native.engine import NativeEngine, NativeEngineConfig

PARAGRAPH = (
    "The history of the city begins with a small fishing village on the river. Over the centuries "
    "traders arrived from the north and the south, bringing salt, wool and spices. The village grew "
    "into a market town, built a stone bridge, a cathedral and a wall with seven gates. In the "
    "eighteenth century the wall was torn down to make room for wide avenues, parks and a railway "
    "station, and the town became the busy city that visitors know today."
)
PROMPTS = {
    "copy-heavy": "Repeat the following paragraph exactly, word for word:\n\n" + PARAGRAPH,
    "open-ended": "Write a short story about a robot who learns to paint.",
}
NEW_TOKENS = 128
ARMS = {
    "off": SpeculationParams(SpeculationMethod.OFF, 4),
    "ngram k=4": SpeculationParams(SpeculationMethod.NGRAM, 4),
}
SECTION = "## Speculative decoding (native engine, prompt lookup)"


@dataclass(frozen=True, slots=True)
class Run:
    tokens: tuple[TokenId, ...]
    stats: FinishStats
    decode_tokens_per_s: float


async def _run(engine: NativeEngine, request: EngineRequest) -> Run:
    tokens: list[TokenId] = []
    first: float | None = None
    stats: FinishStats | None = None
    async for output in engine.generate(request):
        if first is None and output.token_ids:
            first = time.perf_counter()
        tokens.extend(output.token_ids)
        stats = output.stats or stats
    end = time.perf_counter()
    assert first is not None and stats is not None
    # The first token comes from the prefill; decode speed counts the rest.
    return Run(tuple(tokens), stats, (len(tokens) - 1) / (end - first))


async def measure(reps: int) -> list[str]:
    engine = NativeEngine(NativeEngineConfig(max_batch_size=1, context_length=1024))
    await engine.start()
    tokenizer = engine.tokenizer
    rows = []
    counter = 0
    try:
        for name, prompt in PROMPTS.items():
            ids = tuple(tokenizer.encode(tokenizer.render_chat([ChatMessage("user", prompt)])))
            runs: dict[str, list[Run]] = {arm: [] for arm in ARMS}
            for _ in range(reps):
                for arm, speculation in ARMS.items():
                    counter += 1
                    request = EngineRequest(
                        RequestId(f"bench-{counter}"),
                        ids,
                        SamplingParams(temperature=0.0),
                        StoppingParams(max_tokens=NEW_TOKENS, ignore_eos=True),
                        speculation=speculation,
                    )
                    runs[arm].append(await _run(engine, request))
            identical = all(
                run.tokens == runs["off"][0].tokens for arm_runs in runs.values() for run in arm_runs
            )
            baseline = statistics.median(r.decode_tokens_per_s for r in runs["off"])
            for arm, arm_runs in runs.items():
                stats = arm_runs[-1].stats
                speed = statistics.median(r.decode_tokens_per_s for r in arm_runs)
                per_step = len(arm_runs[-1].tokens) / stats.decode_steps
                accepted_per_step = stats.accepted_draft_tokens / stats.decode_steps
                cells = [
                    name,
                    arm,
                    f"{per_step:.2f}",
                    f"{accepted_per_step:.2f}",
                    f"{stats.draft_tokens} / {stats.accepted_draft_tokens}",
                    f"{speed:.1f}",
                    f"{speed / baseline:.2f}x",
                    "yes" if identical else "NO",
                ]
                rows.append("| " + " | ".join(cells) + " |")
    finally:
        await engine.shutdown()
    return rows


def _machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, fp32"


def write(out: Path, rows: list[str], reps: int) -> None:
    section = "\n".join(
        [
            SECTION,
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {_machine()}; "
            f"`.venv/bin/python bench/speculation.py --reps {reps}`. Batch 1, greedy, "
            f"{NEW_TOKENS} new tokens (ignore_eos), median of {reps} runs; "
            "decode speed excludes the prefill.",
            "",
            "| prompt | speculation | tokens/step | accepted/step | drafted / accepted "
            "| decode tok/s | vs off | output identical to off |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    text = (
        out.read_text()
        if out.exists()
        else "# Benchmarks\n\nNumbers measured on our machines; each section names its command.\n\n"
    )
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=2, help="runs per prompt and arm")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="where to write the table"
    )
    args = parser.parse_args()
    rows = asyncio.run(measure(args.reps))
    print("\n".join(rows))
    write(args.out, rows, args.reps)


if __name__ == "__main__":
    main()
