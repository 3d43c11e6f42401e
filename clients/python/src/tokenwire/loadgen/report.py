"""What a person sees of a load run: a progress bar, a table, a JSON file."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tokenwire.loadgen.driver import DriverConfig, LevelProgress
from tokenwire.loadgen.stats import Comparison, LevelResult

JSON_FORMAT = "tokenwire-loadgen/1"


class ProgressBar:
    """A one-line progress bar on a terminal (one line per level elsewhere)."""

    WIDTH = 30

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last_level = -1

    def __call__(self, progress: LevelProgress) -> None:
        """Show ``progress``; each level's last call ends its line."""
        done = progress.elapsed_s >= progress.total_s
        if progress.level == self._last_level or (not self._tty and not done):
            return
        if done:
            self._last_level = progress.level
        fraction = min(progress.elapsed_s / progress.total_s, 1.0) if progress.total_s > 0 else 1.0
        filled = round(fraction * self.WIDTH)
        rate = progress.tokens / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        line = (
            f"level {progress.level + 1}/{progress.levels} c={progress.concurrency:<5} "
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%} "
            f"{progress.elapsed_s:5.1f}/{progress.total_s:.1f} s  {rate:10,.0f} tok/s"
        )
        self._stream.write(("\r" if self._tty else "") + line + ("\n" if done else ""))
        self._stream.flush()


def _cell(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("conc", "concurrency", 0),
    ("reqs", "requests_completed", 0),
    ("tokens", "tokens", 0),
    ("tok/ev", "tokens_per_event", 2),
    ("agg tok/s", "aggregate_tokens_per_s", 0),
    ("user tok/s", "user_tokens_per_s_mean", 0),
    ("user p50", "user_tokens_per_s_p50", 0),
    ("TTFT p50", "ttft_ms_p50", 2),
    ("TTFT p99", "ttft_ms_p99", 2),
    ("ITL p50", "itl_ms_p50", 3),
    ("ITL p90", "itl_ms_p90", 3),
    ("ITL p99", "itl_ms_p99", 3),
    ("add p50", "added_latency_ms_p50", 3),
    ("add p99", "added_latency_ms_p99", 3),
    ("add max", "added_latency_ms_max", 2),
    ("cores", "server_cpu_cores", 2),
    ("us/tok", "server_cpu_us_per_token", 1),
    ("us/ev", "server_cpu_us_per_event", 1),
)


def format_table(levels: Sequence[LevelResult]) -> str:
    """A fixed-width table, one row per level (latencies in ms, CPU in µs; '-' = not measured)."""
    rows = [[name for name, _, _ in _COLUMNS]]
    for level in levels:
        rows.append([_cell(getattr(level, attribute), digits) for _, attribute, digits in _COLUMNS])
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def format_comparison(comparison: Comparison) -> str:
    """The comparison as a few lines of text."""
    lines = ["server CPU per token, tokenwire / floor:"]
    for row in comparison["levels"]:
        lines.append(
            f"  c={row['concurrency']:<5} {_cell(row['tokenwire_cpu_us_per_token'])} µs / "
            f"{_cell(row['floor_cpu_us_per_token'])} µs = {_cell(row['cpu_per_token_ratio'], 2)}x"
        )
    limit = comparison["added_latency_p99_limit_ms"]
    lines.append(
        f"max aggregate tok/s with p99 added latency < {limit:g} ms: "
        f"tokenwire {_cell(comparison['tokenwire_max_aggregate_tokens_per_s'], 0)}, "
        f"floor {_cell(comparison['floor_max_aggregate_tokens_per_s'], 0)}, "
        f"ratio {_cell(comparison['max_aggregate_ratio'], 2)}"
    )
    return "\n".join(lines)


def write_json(
    path: Path,
    config: DriverConfig,
    levels: Sequence[LevelResult],
    *,
    comparison: Comparison | None = None,
) -> None:
    """Write the run's settings, every level's numbers and (optionally) a comparison as JSON."""
    document: dict[str, object] = {
        "format": JSON_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"machine": platform.machine(), "python": platform.python_version(), "node": platform.node()},
        "config": dataclasses.asdict(config),
        "levels": [dataclasses.asdict(level) for level in levels],
    }
    if comparison is not None:
        document["comparison"] = comparison
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def load_levels(path: Path) -> list[LevelResult]:
    """The level results of a JSON file written by ``write_json``."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise ValueError(f"{path} is not a {JSON_FORMAT} file")
    names = {item.name for item in dataclasses.fields(LevelResult)}
    levels = document["levels"]
    if not isinstance(levels, list):
        raise ValueError(f"{path}: 'levels' is not a list")
    return [LevelResult(**{key: value for key, value in level.items() if key in names}) for level in levels]
