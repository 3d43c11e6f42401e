"""The native engine measured through the gRPC API, beside llama.cpp: ``make bench-engine``.

For each server configuration (weights x speculation) starts a real ``tokenwire
serve`` on 127.0.0.1 and measures, through the API: batch-1 end-to-end and
decode-only tokens/s over held-out chat prompts (bench/data/engine_prompts.txt),
time to first token for a ~512-token prompt, aggregate tokens/s at several
concurrent streams, and the server's memory. llama.cpp (bench/.venv-llamacpp,
same GGUF, same prompt token ids, 2 threads) is timed the same way in a
subprocess, and the cost of a speculative verification pass relative to a
decode step is measured in-process. Prints the tables, writes JSON and charts
under bench/results/engine/ and, unless ``--quick`` or ``--no-doc``, the
"Engine" section of docs/benchmarks.md with its charts in docs/img/engine-*.png.
Not a test: timings are noisy; compare within one run.

    bash bench/llamacpp_env.sh            # once: builds llama-cpp-python (about 7.5 min)
    .venv/bin/python bench/engine.py      # the full run (make bench-engine)
    .venv/bin/python bench/engine.py --quick --configs fp32-off,fp32-eagle3,llamacpp
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine_report import LLAMACPP_STAMP, ConfigResult, Report, cpu_line, plot, section
from report_file import replace_section
from serve_process import ROOT, Server, die_with_parent, serve_flags, serving, stop_on_signals
from stream_timing import (
    Timing,
    chat_request,
    concurrent,
    generate,
    median,
    speculation_label,
    tokenize_chat,
)

from engines.native.eagle3.dataset import read_prompts, training_prompts

if TYPE_CHECKING:  # verify_cost imports torch: only the benchmark's last step needs it
    from verify_cost import VerifyCost

PROMPTS = Path(__file__).parent / "data" / "engine_prompts.txt"
RESULTS = ROOT / "bench" / "results" / "engine"
LLAMACPP_PYTHON = Path(__file__).parent / ".venv-llamacpp" / "bin" / "python"
SECTION = "## Engine: native engine through gRPC vs llama.cpp"
LONG_PROMPT_TOKENS = 512
SHORT_TOKENS = 16
"""Tokens of each of the 8 concurrent requests before the loaded-memory reading."""


class Weights(enum.Enum):
    """``tokenwire serve --weights``: fp32 (dequantized at load), the quantized kernels, or those
    with int8 activations."""

    FP32 = "fp32"
    Q = "q"
    Q8ACT = "q8act"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    weights: Weights
    speculation: str | None
    """``--speculation``; None leaves the server's default (eagle3)."""


SERVER_CONFIGS = (
    ServerConfig("fp32-off", Weights.FP32, "off"),
    ServerConfig("fp32-eagle3", Weights.FP32, None),
    ServerConfig("q-off", Weights.Q, "off"),
    ServerConfig("q-eagle3", Weights.Q, None),
    ServerConfig("q8act-off", Weights.Q8ACT, "off"),
    ServerConfig("q8act-eagle3", Weights.Q8ACT, None),
)
LLAMACPP = "llamacpp"
DEFAULT_CONFIGS = "fp32-off,q-off,q-eagle3,q8act-off,q8act-eagle3,llamacpp"
DEFAULT_LOAD_CONFIGS = "q-off,q-eagle3,q8act-off,q8act-eagle3"


def flags_for(config: ServerConfig, has_weights_flag: bool, threads: int) -> tuple[str, ...]:
    """``tokenwire serve`` flags; fp32 means no ``--weights`` on a server from before the flag."""
    flags = ["--engine", "native", "--threads", str(threads), "--log-level", "warning"]
    if has_weights_flag:
        flags += ["--weights", config.weights.value]
    elif config.weights is not Weights.FP32:
        raise SystemExit(
            f"{config.name}: this checkout's `tokenwire serve` has no --weights flag (fp32 only); "
            "run e.g. --configs fp32-off,fp32-eagle3,llamacpp --load-configs fp32-off,fp32-eagle3"
        )
    if config.speculation is not None:
        flags += ["--speculation", config.speculation]
    return tuple(flags)


def read_held_out(count: int) -> list[str]:
    """The first ``count`` benchmark prompts; refuses any the EAGLE-3 head was trained on."""
    prompts = read_prompts(PROMPTS)
    trained = {p.casefold() for p in training_prompts()}
    seen = [p for p in prompts if p.casefold() in trained]
    if seen:
        raise SystemExit(f"{PROMPTS} has prompts the EAGLE-3 head was trained on: {seen}")
    if count > len(prompts):
        raise SystemExit(f"--prompts {count}: {PROMPTS} has only {len(prompts)}")
    return prompts[:count]


# A made-up town's history: long, plain prose for the time-to-first-token prompt.
_HISTORY = (
    "The town of Elmbrook began as a ford where drovers crossed the river with their cattle.",
    "A mill was built on the east bank, and farmers from the valley brought their grain to it.",
    "In the spring floods the ford became impassable, so the townspeople raised a wooden bridge.",
    "Merchants followed the bridge, and a weekly market grew up in the square beside the church.",
    "The wooden bridge burned twice before the council paid masons to build one of stone.",
    "Wool from the hill farms made the town rich, and weavers' cottages lined the lanes.",
    "When the canal arrived, barges carried cloth to the coast and brought back coal and timber.",
    "A fever in the wet summer of one bad year closed the school and emptied the market for months.",
    "The railway replaced the canal within a generation, and the old wharves became warehouses.",
    "Today the mill is a museum, the warehouses are flats, and the market still opens on Saturdays.",
)


async def long_prompt(server: Server, target: int) -> tuple[str, list[int]]:
    """A chat prompt of at least ``target`` tokens, and its ids (tokenized by the server)."""
    sentences: list[str] = []
    while True:
        sentences.append(_HISTORY[len(sentences) % len(_HISTORY)])
        text = " ".join(sentences) + "\n\nSummarize the history of Elmbrook in three sentences."
        ids = await tokenize_chat(server.channel, text)
        if len(ids) >= target:
            return text, ids


@dataclass(frozen=True, slots=True)
class Workload:
    prompts: tuple[str, ...]
    max_tokens: int
    streams: tuple[int, ...]
    ttft_reps: int


@dataclass(frozen=True, slots=True)
class Tokenized:
    """The prompts as the server tokenizes them (for llama.cpp) and the long TTFT prompt."""

    prompts: tuple[tuple[int, ...], ...]
    long_text: str
    long_ids: tuple[int, ...]


async def tokenize(server: Server, work: Workload) -> Tokenized:
    long_text, long_ids = await long_prompt(server, LONG_PROMPT_TOKENS)
    ids = [tuple(await tokenize_chat(server.channel, p)) for p in work.prompts]
    return Tokenized(tuple(ids), long_text, tuple(long_ids))


async def measure_server(
    server: Server,
    config: ServerConfig,
    work: Workload,
    tokens: Tokenized,
    *,
    with_load: bool,
    weights_flag: bool,
) -> ConfigResult:
    """Batch 1, then concurrent streams (``with_load``), TTFT, and memory before and after."""
    idle = server.memory()
    spec = await speculation_label(server.channel)
    weights = config.weights.value if weights_flag else "fp32"
    label = f"tokenwire {weights}, speculation {spec}"
    _progress(f"{config.name}: SERVING after {server.start_s:.1f} s ({label})")
    channel = server.channel
    await generate(channel, chat_request(work.prompts[0], 8))  # warm-up: first-call allocations
    single = []
    for prompt in work.prompts:
        single.append(await generate(channel, chat_request(prompt, work.max_tokens)))
    _progress(f"{config.name}: batch 1 median {median([t.end_to_end_tps for t in single]):.1f} tok/s")
    aggregate = []
    if with_load:
        for n in work.streams:
            requests = [chat_request(work.prompts[i % len(work.prompts)], work.max_tokens) for i in range(n)]
            aggregate.append(await concurrent(channel, requests))
            _progress(f"{config.name}: {n} stream(s) {aggregate[-1].tps:.1f} tok/s aggregate")
    # Each long prompt differs from its first word on: the prefix cache (on by default) then holds
    # only the chat template's system prompt for it, and the TTFT is a cold prefill's.
    ttft = [
        await generate(channel, chat_request(f"({rep + 1}) {tokens.long_text}", 1))
        for rep in range(work.ttft_reps)
    ]
    await concurrent(
        channel, [chat_request(work.prompts[i % len(work.prompts)], SHORT_TOKENS) for i in range(8)]
    )
    return ConfigResult(
        name=config.name,
        label=label,
        single=tuple(single),
        ttft=tuple(ttft),
        ttft_prompt_tokens=len(tokens.long_ids),
        aggregate=tuple(aggregate),
        start_s=server.start_s,
        idle=idle,
        loaded=server.memory(),
    )


def _llamacpp_job(prompts: Sequence[Sequence[int]], new_tokens: int, threads: int) -> list[Timing]:
    from engines.native.weights import default_gguf_path

    job = {
        "gguf": str(default_gguf_path()),
        "prompts": [list(p) for p in prompts],
        "new_tokens": new_tokens,
        "threads": threads,
        "context": 2048,
        "reps": 1,
        "warmup": 8,
    }
    done = subprocess.run(
        [str(LLAMACPP_PYTHON), str(Path(__file__).parent / "llamacpp_decode.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=1200,
        preexec_fn=die_with_parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp run failed ({done.returncode}): {done.stderr[-2000:]}")
    return [
        Timing(
            tokens=len(r["tokens"]),
            first_tokens=1,
            first_s=r["first_s"],
            last_s=r["total_s"],
            total_s=r["total_s"],
        )
        for r in json.loads(done.stdout)
    ]


def measure_llamacpp(tokens: Tokenized, work: Workload, threads: int) -> ConfigResult:
    """llama.cpp in its own venv: the same token ids, timed from the call (prompt included)."""
    single = _llamacpp_job(tokens.prompts, work.max_tokens, threads)
    ttft = _llamacpp_job([tokens.long_ids] * work.ttft_reps, 1, threads)
    _progress(f"llamacpp: batch 1 median {median([t.end_to_end_tps for t in single]):.1f} tok/s")
    return ConfigResult(
        name=LLAMACPP,
        label=f"llama.cpp Q4_1 (GGUF), {threads} threads",
        single=tuple(single),
        ttft=tuple(ttft),
        ttft_prompt_tokens=len(tokens.long_ids),
    )


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``--configs`` asks for, checked before any server starts."""

    names: tuple[str, ...]
    servers: tuple[ServerConfig, ...]
    flags: tuple[tuple[str, ...], ...]
    """``tokenwire serve`` flags of each server."""
    load: frozenset[str]
    weights_flag: bool


def plan(configs: str, load_configs: str, threads: int) -> Plan:
    names = tuple(n for n in configs.split(",") if n)
    by_name = {c.name: c for c in SERVER_CONFIGS}
    unknown = [n for n in names if n not in by_name and n != LLAMACPP]
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}; known: {[*by_name, LLAMACPP]}")
    weights_flag = "--weights" in serve_flags()
    servers = tuple(by_name[n] for n in names if n in by_name)
    flags = tuple(flags_for(c, weights_flag, threads) for c in servers)
    return Plan(names, servers, flags, frozenset(load_configs.split(",")), weights_flag)


async def run_servers(plan: Plan, work: Workload, threads: int) -> tuple[list[ConfigResult], Tokenized]:
    """Each server configuration in turn, one server at a time; and the prompts' token ids.

    The first server tokenizes the prompts for llama.cpp; a run without servers
    starts one for that alone.
    """
    results: list[ConfigResult] = []
    tokens: Tokenized | None = None
    for config, flags in zip(plan.servers, plan.flags, strict=True):
        async with serving(flags) as server:
            tokens = tokens or await tokenize(server, work)
            results.append(
                await measure_server(
                    server,
                    config,
                    work,
                    tokens,
                    with_load=config.name in plan.load,
                    weights_flag=plan.weights_flag,
                )
            )
    if tokens is None:
        async with serving(("--speculation", "off", "--log-level", "warning")) as server:
            tokens = await tokenize(server, work)
    return results, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, in order (default {DEFAULT_CONFIGS})"
    )
    parser.add_argument(
        "--load-configs",
        default=DEFAULT_LOAD_CONFIGS,
        help=f"which of them also get the concurrent-stream runs (default {DEFAULT_LOAD_CONFIGS})",
    )
    parser.add_argument("--prompts", type=int, default=30, help="held-out prompts at batch 1 (default 30)")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per request (default 128)")
    parser.add_argument("--streams", default="1,4,8", help="concurrency levels (default 1,4,8)")
    parser.add_argument("--ttft-reps", type=int, default=3, help="long-prompt requests per configuration")
    parser.add_argument("--verify-reps", type=int, default=40, help="passes of each kind; 0 skips it")
    parser.add_argument("--threads", type=int, default=2, help="engine threads, tokenwire and llama.cpp")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="development run: 3 prompts, 32 tokens, streams 1,4, fewer repetitions; no doc",
    )
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the doc")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.max_tokens, args.streams = min(args.prompts, 3), min(args.max_tokens, 32), "1,4"
        args.ttft_reps, args.verify_reps, args.no_doc = 1, min(args.verify_reps, 10), True
    stop_on_signals()
    command = "make bench-engine" if sys.argv[1:] == [] else shlex.join(["bench/engine.py", *sys.argv[1:]])
    work = Workload(
        prompts=tuple(read_held_out(args.prompts)),
        max_tokens=args.max_tokens,
        streams=tuple(int(n) for n in args.streams.split(",")),
        ttft_reps=args.ttft_reps,
    )
    the_plan = plan(args.configs, args.load_configs, args.threads)
    if LLAMACPP in the_plan.names and not LLAMACPP_STAMP.exists():
        raise SystemExit("bench/.venv-llamacpp is not built: run `bash bench/llamacpp_env.sh` first")
    _progress(cpu_line())
    load_at_start = os.getloadavg()[0]
    results, tokens = asyncio.run(run_servers(the_plan, work, args.threads))
    if LLAMACPP in the_plan.names:
        results.append(measure_llamacpp(tokens, work, args.threads))
    results.sort(key=lambda r: the_plan.names.index(r.name))
    verify: tuple[VerifyCost, ...] = ()
    if args.verify_reps > 0:
        from verify_cost import measure_verify_cost

        from engines.native.matrices import WeightFormat

        # A real prefix; any 200 tokens would time the same.
        verify = measure_verify_cost(
            tokens.long_ids[:200],
            weights=(WeightFormat.Q, WeightFormat.Q8ACT, WeightFormat.FP32),
            reps=args.verify_reps,
            threads=args.threads,
        )
        for v in verify:
            _progress(f"verify k=4, {v.weights}: {v.verify_ms:.1f} ms vs a step's {v.step_ms:.1f} ms")
    report = Report(
        results=tuple(results),
        verify=verify,
        command=command,
        date=time.strftime("%Y-%m-%d"),
        max_tokens=args.max_tokens,
        prompts=len(work.prompts),
        load_average=(load_at_start, os.getloadavg()[0]),
    )
    finish(report, args.out, write_doc=not args.no_doc)


def finish(report: Report, doc: Path, *, write_doc: bool) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(dataclasses.asdict(report), indent=1))
    text = section(report, SECTION, [])
    print(text)
    if write_doc:
        images = plot(report, doc.resolve().parent / "img", "engine-")
        links = [os.path.relpath(p, doc.resolve().parent) for p in images]
        replace_section(doc, section(report, SECTION, links))
    else:
        plot(report, RESULTS, "")


if __name__ == "__main__":
    main()
