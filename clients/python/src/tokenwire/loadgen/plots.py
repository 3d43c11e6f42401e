"""PNG charts of a load run (matplotlib, imported only when a chart is drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenwire.loadgen.stats import LevelResult

_LATENCY_SERIES: tuple[tuple[str, str, str], ...] = (
    ("ttft_ms_p50", "TTFT p50", "tab:blue"),
    ("ttft_ms_p99", "TTFT p99", "tab:blue"),
    ("itl_ms_p50", "ITL p50", "tab:green"),
    ("itl_ms_p90", "ITL p90", "tab:green"),
    ("itl_ms_p99", "ITL p99", "tab:green"),
    ("added_latency_ms_p50", "added p50", "tab:red"),
    ("added_latency_ms_p99", "added p99", "tab:red"),
    ("added_latency_ms_max", "added max", "tab:red"),
)
_STYLES = {"p50": "-", "p90": "-.", "p99": "--", "max": ":"}


def write_plots(levels: Sequence[LevelResult], directory: Path, *, title: str = "") -> list[Path]:
    """Draw the throughput chart and the latency chart into ``directory``; returns their paths.

    ``throughput.png``: tokens/s per user (x) against aggregate tokens/s (y), one
    point per concurrency level: the chart NVIDIA reports its records on.
    ``latency.png``: TTFT, inter-token and added latency percentiles against
    concurrency (log x; y linear below 0.1 ms, logarithmic above).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    suffix = f" ({title})" if title else ""

    throughput_path = directory / "throughput.png"
    figure, axes = plt.subplots(figsize=(7, 5), layout="constrained")
    points = [(lvl.user_tokens_per_s_p50, lvl.aggregate_tokens_per_s, lvl.concurrency) for lvl in levels]
    drawn = [(x, y, c) for x, y, c in points if x is not None]
    axes.plot([x for x, _, _ in drawn], [y for _, y, _ in drawn], "o-", color="tab:green")
    for x, y, streams in drawn:
        axes.annotate(f"c={streams}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("tokens/s per user (median)")
    axes.set_ylabel("aggregate tokens/s")
    axes.set_title(f"Throughput vs. per-user speed{suffix}")
    axes.grid(True, alpha=0.3)
    figure.savefig(throughput_path, dpi=120)
    plt.close(figure)

    latency_path = directory / "latency.png"
    figure, axes = plt.subplots(figsize=(7, 5), layout="constrained")
    concurrency = [lvl.concurrency for lvl in levels]
    plotted: list[float] = []
    for attribute, label, color in _LATENCY_SERIES:
        values = [getattr(lvl, attribute) for lvl in levels]
        pairs = [(c, v) for c, v in zip(concurrency, values, strict=True) if v is not None]
        if not pairs:
            continue
        plotted.extend(v for _, v in pairs)
        style = _STYLES[label.rsplit(" ", 1)[1]]
        axes.plot([c for c, _ in pairs], [v for _, v in pairs], style, marker="o", color=color, label=label)
    axes.set_xscale("log", base=2)
    axes.set_xticks(concurrency, labels=[str(c) for c in concurrency])
    axes.minorticks_off()
    # Added latency can be slightly negative (the reference event was itself late): symlog shows it.
    axes.set_yscale("symlog", linthresh=0.1)
    if plotted:
        low, high = min(plotted), max(plotted)
        axes.set_ylim(low * 2 if low < 0 else low / 2, high * 2 if high > 0 else 1.0)
    axes.set_xlabel("concurrent streams")
    axes.set_ylabel("ms")
    axes.set_title(f"Latency percentiles vs. concurrency{suffix}")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    figure.savefig(latency_path, dpi=120)
    plt.close(figure)
    return [throughput_path, latency_path]
