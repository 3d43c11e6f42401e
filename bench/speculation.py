"""Speculation in the native engine, and llama.cpp beside it: same prompts, same run.

Arms: no speculation, prompt lookup (ngram), the shipped EAGLE-3 head, and
(with ``--llamacpp``) llama.cpp through llama-cpp-python on the same GGUF with
2 threads. Prompt groups: ``held-out``, open-ended instructions from
engines/native/eagle3/data/heldout_prompts.txt (never trained on), and
``copy-heavy``. Greedy, 128 new tokens with ignore_eos, batch 1; checks that
every speculating arm's output is identical to no speculation, and writes a
table to docs/benchmarks.md (replacing its section). Not a test: timings are
noisy; compare the ratios.

    bash bench/llamacpp_env.sh   # once: builds llama-cpp-python (about 7.5 min)
    .venv/bin/python bench/speculation.py --reps 2 --llamacpp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from report_file import machine, replace_section

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
from engines.native.eagle3.dataset import benchmark_prompts
from engines.native.engine import NativeEngine, NativeEngineConfig
from engines.native.weights import default_gguf_path

PARAGRAPH = (
    "The history of the city begins with a small fishing village on the river. Over the centuries "
    "traders arrived from the north and the south, bringing salt, wool and spices. The village grew "
    "into a market town, built a stone bridge, a cathedral and a wall with seven gates. In the "
    "eighteenth century the wall was torn down to make room for wide avenues, parks and a railway "
    "station, and the town became the busy city that visitors know today."
)
HELD_OUT_COUNT = 10
"""Held-out prompts used: every ninth of the 90, so every template and many topics appear."""
NEW_TOKENS = 128
ARMS = {
    "off": SpeculationParams(SpeculationMethod.OFF, 4),
    "ngram k=4": SpeculationParams(SpeculationMethod.NGRAM, 4),
    "eagle3 k=4": SpeculationParams(SpeculationMethod.EAGLE3, 4),
}
LLAMACPP = "llama.cpp (Q4_1, 2 threads)"
LLAMACPP_PYTHON = Path(__file__).parent / ".venv-llamacpp" / "bin" / "python"
SECTION = "## Speculative decoding (native engine) and llama.cpp"


def prompt_groups() -> dict[str, list[str]]:
    held_out = benchmark_prompts()
    step = max(1, len(held_out) // HELD_OUT_COUNT)
    return {
        "held-out": held_out[::step][:HELD_OUT_COUNT],
        "copy-heavy": ["Repeat the following paragraph exactly, word for word:\n\n" + PARAGRAPH],
    }


@dataclass(frozen=True, slots=True)
class Run:
    tokens: tuple[TokenId, ...]
    decode_s: float
    """From the first token (the prefill's) to the last."""
    stats: FinishStats | None


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
    return Run(tuple(tokens), end - first, stats)


async def measure_native(
    groups: dict[str, list[tuple[TokenId, ...]]], reps: int, config: NativeEngineConfig
) -> dict[str, dict[str, list[Run]]]:
    """Per group and arm: one run per prompt and repetition, arms interleaved."""
    engine = NativeEngine(config)
    await engine.start()
    runs: dict[str, dict[str, list[Run]]] = {g: {arm: [] for arm in ARMS} for g in groups}
    counter = 0
    try:
        for _ in range(reps):
            for group, prompts in groups.items():
                for ids in prompts:
                    for arm, speculation in ARMS.items():
                        counter += 1
                        request = EngineRequest(
                            RequestId(f"bench-{counter}"),
                            ids,
                            SamplingParams(temperature=0.0),
                            StoppingParams(max_tokens=NEW_TOKENS, ignore_eos=True),
                            speculation=speculation,
                        )
                        runs[group][arm].append(await _run(engine, request))
    finally:
        await engine.shutdown()
    return runs


def measure_llamacpp(groups: dict[str, list[tuple[TokenId, ...]]], reps: int) -> dict[str, list[Run]]:
    """The same prompts through llama.cpp in its own environment (a subprocess)."""
    flat = [list(ids) for prompts in groups.values() for ids in prompts]
    job = {
        "gguf": str(default_gguf_path()),
        "prompts": flat,
        "new_tokens": NEW_TOKENS,
        "threads": 2,
        "context": 1024,
        "reps": reps,
    }
    done = subprocess.run(
        [str(LLAMACPP_PYTHON), str(Path(__file__).parent / "llamacpp_decode.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(done.stdout)
    out: dict[str, list[Run]] = {g: [] for g in groups}
    for rep in range(reps):
        index = rep * len(flat)
        for group, prompts in groups.items():
            for _ in prompts:
                result = results[index]
                out[group].append(Run(tuple(TokenId(t) for t in result["tokens"]), result["decode_s"], None))
                index += 1
    return out


def _speed(arm_runs: list[Run], n_prompts: int) -> float:
    """Median over repetitions of the group's decode tokens per second (first token excluded)."""
    return statistics.median(
        sum(len(r.tokens) - 1 for r in rep) / sum(r.decode_s for r in rep)
        for rep in (arm_runs[i : i + n_prompts] for i in range(0, len(arm_runs), n_prompts))
    )


def rows_for(runs: dict[str, dict[str, list[Run]]], reps: int) -> list[str]:
    """One table row per group and arm; runs are ordered repetition-major, prompts within."""
    rows = []
    for group, arms in runs.items():
        n_prompts = len(arms["off"]) // reps
        reference = [r.tokens for r in arms["off"][:n_prompts]]

        baseline = _speed(arms["off"], n_prompts)
        for arm, arm_runs in arms.items():
            stats = [r.stats for r in arm_runs if r.stats is not None]
            if stats:
                steps = sum(s.decode_steps for s in stats)
                drafted = sum(s.draft_tokens for s in stats)
                accepted = sum(s.accepted_draft_tokens for s in stats)
                tokens = sum(len(r.tokens) for r in arm_runs)
                per_step, accepted_per_step = f"{tokens / steps:.2f}", f"{accepted / steps:.2f}"
                acceptance = f"{drafted} / {accepted}"
            else:
                per_step = accepted_per_step = acceptance = "-"
            same = sum(r.tokens == reference[i % n_prompts] for i, r in enumerate(arm_runs))
            identical = "yes" if same == len(arm_runs) else f"{same} of {len(arm_runs)}"
            rate = _speed(arm_runs, n_prompts)
            cells = [
                group,
                arm,
                per_step,
                accepted_per_step,
                acceptance,
                f"{rate:.1f}",
                f"{rate / baseline:.2f}x",
                identical,
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def write(out: Path, rows: list[str], reps: int, llamacpp: bool) -> None:
    flag = " --llamacpp" if llamacpp else ""
    section = "\n".join(
        [
            SECTION,
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; "
            f"`.venv/bin/python bench/speculation.py --reps {reps}{flag}`. Batch 1, greedy, "
            f"{NEW_TOKENS} new tokens (ignore_eos), {HELD_OUT_COUNT} held-out prompts (never trained on) "
            f"and one copy-heavy prompt, median over {reps} repetitions of each group's decode tokens/s "
            "(first token excluded: it comes from the prefill). tokens/step counts every emitted token "
            "per target forward pass (accepted drafts + the target's own); accepted/step only the drafts. "
            "Identical: the same tokens as no speculation (llama.cpp computes with quantized dot "
            "products, so its greedy text may differ).",
            "",
            "| prompts | engine / speculation | tokens/step | accepted/step | drafted / accepted "
            "| decode tok/s | vs off | output identical to off |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    replace_section(out, section)


async def _tokenize(groups: dict[str, list[str]]) -> dict[str, list[tuple[TokenId, ...]]]:
    from engines.native.tokenizer import NativeTokenizer
    from engines.native.weights import load_weights

    tokenizer = NativeTokenizer(load_weights(default_gguf_path(), None, None).tokenizer)
    return {
        group: [
            tuple(tokenizer.encode(tokenizer.render_chat([ChatMessage("user", p)]), add_special_tokens=False))
            for p in prompts
        ]
        for group, prompts in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=2, help="repetitions of every prompt and arm")
    parser.add_argument(
        "--llamacpp", action="store_true", help="add llama.cpp (run bench/llamacpp_env.sh first)"
    )
    parser.add_argument(
        "--draft-length", type=int, default=4, help="draft tokens per step of the speculating arms"
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help="EAGLE-3 drafting threshold (default: the engine's)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="where to write the table"
    )
    args = parser.parse_args()
    groups = asyncio.run(_tokenize(prompt_groups()))
    config = NativeEngineConfig(max_batch_size=1, context_length=1024)
    if args.min_confidence is not None:
        config = replace(config, draft_min_confidence=args.min_confidence)
    for arm, params in list(ARMS.items()):
        if params.method is not SpeculationMethod.OFF:
            del ARMS[arm]
            ARMS[f"{params.method.value} k={args.draft_length}"] = replace(
                params, draft_length=args.draft_length
            )
    runs = asyncio.run(measure_native(groups, args.reps, config))
    if args.llamacpp:
        for group, llama_runs in measure_llamacpp(groups, args.reps).items():
            runs[group][LLAMACPP] = llama_runs
    rows = rows_for(runs, args.reps)
    print("\n".join(rows))
    write(args.out, rows, args.reps, args.llamacpp)


if __name__ == "__main__":
    main()
