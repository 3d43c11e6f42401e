"""The engine benchmark's results: the values, the machine line, Markdown tables and PNG charts."""

from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from report_file import machine
from serve_process import Memory
from stream_timing import Aggregate, Timing, median

if TYPE_CHECKING:  # verify_cost imports torch: only the benchmark's last step needs it
    from verify_cost import VerifyCost

LLAMACPP_STAMP = Path(__file__).parent / ".venv-llamacpp" / ".cmake-args"
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


@dataclass(frozen=True, slots=True)
class ConfigResult:
    """Everything measured for one configuration (a tokenwire server, or llama.cpp)."""

    name: str
    """The ``--configs`` name, e.g. ``q-eagle3``."""
    label: str
    """What ran, for tables: engine, weights and the speculation the server reported."""
    single: tuple[Timing, ...]
    """Batch 1: one per prompt."""
    ttft: tuple[Timing, ...]
    """The long prompt, one token each."""
    ttft_prompt_tokens: int
    aggregate: tuple[Aggregate, ...] = ()
    """Concurrent streams, one per level (empty when not measured)."""
    start_s: float | None = None
    idle: Memory | None = None
    loaded: Memory | None = None
    """After the concurrent short requests."""


@dataclass(frozen=True, slots=True)
class Report:
    results: tuple[ConfigResult, ...]
    verify: tuple[VerifyCost, ...]
    command: str
    date: str
    max_tokens: int
    prompts: int
    load_average: tuple[float, float]
    """The 1-minute load average at the start and at the end: other work on the CPUs skews everything."""


def cpu_line() -> str:
    """CPU model, cores, the SIMD flags that decide kernels, torch and llama.cpp build flags."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    simd = " ".join(f"{flag}{'+' if flag in flags else '-'}" for flag in SIMD_FLAGS)
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "absent"
    line = f"{machine()}; SIMD {simd}; torch {torch}"
    if LLAMACPP_STAMP.exists():
        line += f"; llama.cpp built with `{LLAMACPP_STAMP.read_text().strip()}`"
    return line


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _tokens_per_step(result: ConfigResult) -> str:
    # The engine counts the prefill's forward pass as a step: it yields the first token.
    steps = sum(t.steps for t in result.single)
    return f"{sum(t.tokens for t in result.single) / steps:.2f}" if steps else "-"


def batch1_table(report: Report) -> list[str]:
    reference = next((r for r in report.results if r.name == "llamacpp"), None)
    ref_decode = median([t.decode_tps for t in reference.single]) if reference else float("nan")
    rows = [
        "| configuration | end-to-end tok/s | decode tok/s | decode vs llama.cpp | tokens/step "
        "| TTFT, prompt of N tokens |",
        "|---|---|---|---|---|---|",
    ]
    for result in report.results:
        e2e = median([t.end_to_end_tps for t in result.single])
        decode = median([t.decode_tps for t in result.single])
        ttft_ms = median([t.first_s for t in result.ttft]) * 1000
        cells = [
            result.label,
            _f(e2e),
            _f(decode),
            f"{_f(decode / ref_decode, 2)}x" if reference else "-",
            _tokens_per_step(result),
            f"{_f(ttft_ms, 0)} ms (N={result.ttft_prompt_tokens})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def concurrency_table(report: Report) -> list[str]:
    measured = [r for r in report.results if r.aggregate]
    if not measured:
        return []
    levels = sorted({a.streams for r in measured for a in r.aggregate})
    rows = [
        "| configuration | " + " | ".join(f"{n} stream{'s' if n > 1 else ''}" for n in levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for result in measured:
        by_level = {a.streams: a for a in result.aggregate}
        cells = [_f(by_level[n].tps) if n in by_level else "-" for n in levels]
        rows.append(f"| {result.label} | " + " | ".join(cells) + " |")
    return rows


def memory_table(report: Report) -> list[str]:
    measured = [r for r in report.results if r.idle is not None]
    if not measured:
        return []
    rows = [
        "| configuration | start to SERVING | RSS idle | RSS after the runs | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for result in measured:
        assert result.idle is not None and result.loaded is not None and result.start_s is not None
        cells = [
            result.label,
            f"{result.start_s:.1f} s",
            f"{result.idle.rss_mib:.0f} MiB",
            f"{result.loaded.rss_mib:.0f} MiB",
            f"{result.loaded.peak_rss_mib:.0f} MiB",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def verify_table(verifies: tuple[VerifyCost, ...]) -> list[str]:
    k = verifies[0].draft_length
    return [
        f"| weights | cache position | 1-token step | {k + 1}-token verification (k={k}) | ratio |",
        "|---|---|---|---|---|",
        *(
            f"| {v.weights} | {v.position} | {v.step_ms:.1f} ms | {v.verify_ms:.1f} ms | {v.ratio:.2f}x |"
            for v in verifies
        ),
    ]


def plot(report: Report, directory: Path, prefix: str) -> list[Path]:
    """Small PNGs: batch-1 rates per configuration, and aggregate rate against streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    labels = [r.label for r in report.results]
    e2e = [median([t.end_to_end_tps for t in r.single]) for r in report.results]
    decode = [median([t.decode_tps for t in r.single]) for r in report.results]
    fig, ax = plt.subplots(figsize=(6.4, 1.3 + 0.5 * len(labels)), dpi=80)
    ys = range(len(labels))
    for offset, values, name in ((-0.2, e2e, "end to end (prompt included)"), (0.2, decode, "decode only")):
        bars = ax.barh([y + offset for y in ys], values, height=0.4, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.set_xlabel(f"tokens/s, batch 1, median of {report.prompts} prompts", fontsize=8)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    path = directory / f"{prefix}batch1.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)

    measured = [r for r in report.results if r.aggregate]
    if measured:
        fig, ax = plt.subplots(figsize=(5.0, 3.0), dpi=80)
        for result in measured:
            streams = [a.streams for a in result.aggregate]
            ax.plot(streams, [a.tps for a in result.aggregate], marker="o", label=result.label)
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("aggregate tokens/s")
        ax.set_xticks(sorted({a.streams for r in measured for a in r.aggregate}))
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = directory / f"{prefix}concurrency.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def section(report: Report, title: str, images: list[str]) -> str:
    """The Markdown section for docs/benchmarks.md (``images``: paths relative to the doc)."""
    parts = [
        title,
        "",
        f"Measured {report.date} on {cpu_line()}. 1-minute load average {report.load_average[0]:.1f} "
        f"at the start, {report.load_average[1]:.1f} at the end (above the core count: something else "
        "was running).",
        "",
        f"Command: `{report.command}`. Each tokenwire configuration is its own `tokenwire serve` "
        "process on 127.0.0.1 (one at a time), measured through the gRPC API with "
        f"{report.prompts} held-out chat prompts (bench/data/engine_prompts.txt; none is among the "
        f"EAGLE-3 head's training prompts), greedy, {report.max_tokens} tokens each (EOS ignored), "
        "batch 1, medians over the prompts.",
        "",
        "- End-to-end: completion tokens / time from sending the request to its final event "
        "(prefill, queueing and the wire included). Decode: tokens after the first delta / time after it.",
        "- llama.cpp: llama-cpp-python (bench/.venv-llamacpp) on the same GGUF with the same "
        "chat-rendered prompt token ids, timed the same way in its process (no gRPC, empty cache "
        "for every prompt).",
        "- TTFT: median of a few one-token requests with a long chat prompt of N tokens, each a different "
        "prompt (cold: only the chat template's system prompt can come from the prefix cache).",
        "- Tokens/step: completion tokens per forward pass of the target model (the prefill's "
        "included, so 1.00 without speculation).",
        "",
        *batch1_table(report),
        "",
    ]
    concurrency = concurrency_table(report)
    if concurrency:
        parts += [
            f"Aggregate tokens/s with N streams started together ({report.max_tokens} tokens each, "
            "greedy; wall time from the first request to the last final event):",
            "",
            *concurrency,
            "",
        ]
    memory = memory_table(report)
    if memory:
        parts += [
            "Server memory (VmRSS from /proc: idle right after health SERVING, and after the "
            "measurements above, the last being 8 concurrent short requests; peak is VmHWM):",
            "",
            *memory,
            "",
        ]
    if report.verify:
        v = report.verify[0]
        parts += [
            f"Cost of an EAGLE-3 verification pass, in-process (no gRPC), {v.threads} threads, "
            f"medians of {v.reps} rounds after a {v.position}-token prefill, each round a step and a "
            "verification on every format's model in turn:",
            "",
            *verify_table(report.verify),
            "",
        ]
    parts += [f"![{image}]({image})" for image in images]
    return "\n".join(parts).rstrip() + "\n"
