"""``python -m tokenwire.loadgen``: ``run`` drives a server, ``compare`` sets tokenwire against the floor.

The argument builders are public so that another command line (``tokenwire
bench``) can offer the same flags.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tokenwire.loadgen.driver import DriverConfig, LoadError, SimParams, run
from tokenwire.loadgen.plots import write_plots
from tokenwire.loadgen.report import ProgressBar, format_comparison, format_table, load_levels, write_json
from tokenwire.loadgen.stats import compare

RESULTS_DIRECTORY = Path("bench/results")


def _levels(raw: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {raw!r}") from error
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive integers")
    return levels


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``run``."""
    parser.add_argument("--address", default="127.0.0.1:50051", help="server host:port [127.0.0.1:50051]")
    parser.add_argument(
        "--concurrency", type=_levels, default=(1, 8, 64, 256), help="streams per level, e.g. 1,8,64,256"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per level [10]")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each level [1]")
    parser.add_argument("--processes", type=int, default=2, help="client processes sharing the streams [2]")
    parser.add_argument("--session", action="store_true", help="one Session stream per process, not Generate")
    parser.add_argument("--max-tokens", type=int, default=512, help="max_tokens of every request [512]")
    parser.add_argument(
        "--ignore-eos", action=argparse.BooleanOptionalAction, default=True, help="set ignore_eos [on]"
    )
    parser.add_argument("--prompt-tokens", type=int, default=32, help="prompt length in token ids [32]")
    parser.add_argument("--server-pid", type=int, help="measure this process's CPU time (/proc/PID/stat)")
    parser.add_argument(
        "--sim-step-ms",
        type=float,
        help="the server runs the paced simulation (latency mode) with this step: report added latency",
    )
    parser.add_argument("--sim-acceptance", type=float, default=0.81, help="its per-draft acceptance [0.81]")
    parser.add_argument("--sim-max-draft", type=int, default=3, help="its drafts per step [3]")
    parser.add_argument("--sim-seed", type=int, default=0, help="its seed [0]")
    parser.add_argument(
        "--out", type=Path, help="directory for loadgen.json and the PNGs [bench/results/<time>]"
    )
    parser.add_argument("--title", default="", help="label for the charts, e.g. 'tokenwire sim' or 'floor'")
    parser.add_argument("--compare-floor", type=Path, help="a floor run's loadgen.json: add a comparison")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG charts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def config_from_args(args: argparse.Namespace) -> DriverConfig:
    """The driver settings that ``add_run_arguments``' flags describe."""
    sim = None
    if args.sim_step_ms is not None:
        sim = SimParams(
            step_ms=args.sim_step_ms,
            acceptance=args.sim_acceptance,
            max_draft=args.sim_max_draft,
            seed=args.sim_seed,
        )
    return DriverConfig(
        address=args.address,
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        processes=args.processes,
        rpc="session" if args.session else "generate",
        max_tokens=args.max_tokens,
        ignore_eos=args.ignore_eos,
        prompt_tokens=args.prompt_tokens,
        server_pid=args.server_pid,
        sim=sim,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the load, print the table, write the JSON (and PNGs); returns the exit status."""
    config = config_from_args(args)
    out: Path = args.out or RESULTS_DIRECTORY / time.strftime("loadgen-%Y%m%d-%H%M%S", time.gmtime())
    try:
        levels = run(config, on_progress=None if args.no_progress else ProgressBar())
    except LoadError as error:
        print(f"loadgen: {error}", file=sys.stderr)
        return 1
    print(format_table(levels))
    for level in levels:
        if level.schedule_mismatches:
            print(
                f"loadgen: c={level.concurrency}: {level.schedule_mismatches} events end mid-step in the"
                " replayed schedule: do the --sim-* flags match the server's simulation settings?",
                file=sys.stderr,
            )
    comparison = None
    if args.compare_floor is not None:
        comparison = compare(levels, load_levels(args.compare_floor))
        print(format_comparison(comparison))
    json_path = out / "loadgen.json"
    write_json(json_path, config, levels, comparison=comparison)
    written = [json_path]
    if not args.no_plots:
        written += write_plots(levels, out, title=args.title)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``compare``."""
    parser.add_argument("tokenwire", type=Path, help="tokenwire's loadgen.json")
    parser.add_argument("floor", type=Path, help="the floor server's loadgen.json (same levels)")
    parser.add_argument("--limit-ms", type=float, default=1.0, help="p99 added latency limit [1.0]")


def compare_from_args(args: argparse.Namespace) -> int:
    """Print the comparison of two saved runs; returns the exit status."""
    comparison = compare(
        load_levels(args.tokenwire), load_levels(args.floor), added_p99_limit_ms=args.limit_ms
    )
    print(format_comparison(comparison))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tokenwire.loadgen``."""
    parser = argparse.ArgumentParser(prog="python -m tokenwire.loadgen", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_arguments(commands.add_parser("run", help="drive a running server at several concurrency levels"))
    add_compare_arguments(commands.add_parser("compare", help="tokenwire vs. the floor from two JSON files"))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_from_args(args)
    return compare_from_args(args)
