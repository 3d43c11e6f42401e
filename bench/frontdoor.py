"""The front door measured beside the floor: ``make bench``.

For each of the record's two shapes, runs the bare grpc.aio floor server
(bench/floor_server.py: same messages, same paced worker thread, no logic)
and then tokenwire with the sim engine, back to back, under identical load
from ``tokenwire bench`` (several client processes on this machine), and
compares server CPU per token and the highest aggregate rate whose p99 added
latency stays under 1 ms. Writes JSON and PNG charts under
bench/results/frontdoor/ and the tables to docs/benchmarks.md (its "Front
door" section). Not a test: timings are noisy; compare within one run.

    .venv/bin/python bench/frontdoor.py [--duration 10] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2
from report_file import machine, replace_section
from tokenwire.loadgen.report import format_comparison, format_table, load_levels
from tokenwire.loadgen.stats import LevelResult, compare

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "frontdoor"
SECTION = "## Front door: tokenwire (sim engine) vs the bare grpc.aio floor"


@dataclass(frozen=True, slots=True)
class Shape:
    """One of the record's configurations, as load."""

    name: str
    mode: str
    concurrency: str
    sim_step_ms: float | None
    """Latency mode: the step interval, so the load tool can compute added latency."""
    serve_flags: tuple[str, ...] = ()
    """tokenwire's settings for this shape (chosen from these measurements, docs/benchmarks.md)."""


SHAPES = (
    Shape("latency", "latency", "1,4,8", 3.0),
    # Holding a stream's tokens until 8 are pending (at most 5 ms) cut the CPU per token ~1.6x
    # at hundreds of streams; the latency shape holds nothing back.
    Shape(
        "throughput", "throughput", "32,128,256,512", None, ("--coalesce-tokens", "8", "--coalesce-ms", "5")
    ),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_serving(address: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        # Typed by hand: the typeshed stub of grpc_health's HealthStub declares no methods.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                reply = check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{address} did not become SERVING within {timeout_s} s")


def _start(server: str, shape: Shape, port: int, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    python = sys.executable
    if server == "floor":
        command = [python, str(ROOT / "bench" / "floor_server.py"), "--port", str(port), "--mode", shape.mode]
    else:
        command = [
            python, "-m", "service.cli", "serve", "--engine", "sim", "--sim-mode", shape.mode,
            "--port", str(port), "--log-level", "warning", *shape.serve_flags, *extra,
        ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)


def _ready(server: str, address: str, process: subprocess.Popen[bytes]) -> None:
    if server == "tokenwire":
        _wait_serving(address, process)
        return
    # The floor server has no health service: wait until its port accepts connections.
    deadline = time.monotonic() + 60.0
    host, port = address.rsplit(":", 1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the floor server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the floor server did not listen within 60 s")


def run_one(
    server: str,
    shape: Shape,
    duration: float,
    processes: int,
    compare_with: Path | None,
    extra: tuple[str, ...] = (),
    label: str = "",
) -> Path:
    """Start ``server``, drive it with ``tokenwire bench``, stop it; returns its loadgen.json."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    out = RESULTS / f"{shape.name}-{server}{label}"
    process = _start(server, shape, port, extra)
    try:
        _ready(server, address, process)
        command = [
            sys.executable, "-m", "service.cli", "bench", "--address", address,
            "--concurrency", shape.concurrency, "--duration", str(duration), "--processes", str(processes),
            "--server-pid", str(process.pid), "--title", f"{server} ({shape.name} shape)", "--out", str(out),
        ]  # fmt: skip
        if shape.sim_step_ms is not None:
            command += ["--sim-step-ms", str(shape.sim_step_ms)]
        if compare_with is not None:
            command += ["--compare-floor", str(compare_with)]
        subprocess.run(command, cwd=ROOT, check=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return out / "loadgen.json"


def metrics_cost(on: list[LevelResult], off: list[LevelResult]) -> str:
    """Server CPU per token with metrics on / off, level by level (the goal: <= 1.05x)."""
    lines = ["server CPU per token, metrics on / off:"]
    by_level = {level.concurrency: level for level in off}
    for level in on:
        base = by_level.get(level.concurrency)
        if base is None or not level.server_cpu_us_per_token or not base.server_cpu_us_per_token:
            continue
        ratio = level.server_cpu_us_per_token / base.server_cpu_us_per_token
        lines.append(
            f"  c={level.concurrency:<5} {level.server_cpu_us_per_token:.1f} µs / "
            f"{base.server_cpu_us_per_token:.1f} µs = {ratio:.2f}x"
        )
    return "\n".join(lines)


def median_levels(runs: list[list[LevelResult]]) -> list[LevelResult]:
    """The first run's levels, each with the median server CPU per token over ``runs``."""
    merged = []
    for level in runs[0]:
        values = [
            other.server_cpu_us_per_token
            for run in runs
            for other in run
            if other.concurrency == level.concurrency and other.server_cpu_us_per_token is not None
        ]
        median = statistics.median(values) if values else None
        merged.append(dataclasses.replace(level, server_cpu_us_per_token=median))
    return merged


def each_run(ours: list[list[LevelResult]], floors: list[list[LevelResult]]) -> str:
    """Every repetition's CPU-per-token ratio against the floor of the same repetition."""
    lines = ["each repetition, tokenwire / floor of the same repetition:"]
    for index, level in enumerate(ours[0]):
        ratios = []
        for mine, floor in zip(ours, floors, strict=True):
            a, b = mine[index].server_cpu_us_per_token, floor[index].server_cpu_us_per_token
            ratios.append(f"{a / b:.2f}x" if a and b else "-")
        lines.append(f"  c={level.concurrency:<5} " + "  ".join(ratios))
    return "\n".join(lines)


def write(out: Path, parts: list[str], duration: float, processes: int, repeat: int) -> None:
    section = "\n".join(
        [
            SECTION,
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; `make bench` "
            f"(`.venv/bin/python bench/frontdoor.py --duration {duration} --processes {processes} "
            f"--repeat {repeat}`). "
            "Server and load clients share the machine. Charts: bench/results/frontdoor/*/.",
            "",
            *parts,
            "",
        ]
    )
    replace_section(out, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per concurrency level")
    parser.add_argument("--processes", type=int, default=2, help="load client processes")
    parser.add_argument("--shapes", default="latency,throughput", help="which shapes to run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the three servers, in rotation")
    parser.add_argument(
        "--serve-args",
        default="",
        help="extra `tokenwire serve` flags, e.g. '--coalesce-tokens 8 --coalesce-ms 5'",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the table's file")
    args = parser.parse_args()
    parts: list[str] = []
    for shape in SHAPES:
        if shape.name not in args.shapes.split(","):
            continue
        extra = tuple(args.serve_args.split())
        # The same with Prometheus metrics on (ORCA trailers are on in both).
        with_metrics = (*extra, "--metrics-port", "0")
        floors, plains, metereds = [], [], []
        for repetition in range(args.repeat):
            tag = f"-{repetition + 1}" if repetition else ""
            floor = run_one("floor", shape, args.duration, args.processes, None, label=tag)
            plain = run_one("tokenwire", shape, args.duration, args.processes, floor, extra, tag)
            metered = run_one(
                "tokenwire", shape, args.duration, args.processes, floor, with_metrics, "-metrics" + tag
            )
            floors.append(load_levels(floor))
            plains.append(load_levels(plain))
            metereds.append(load_levels(metered))
        floor_levels, tokenwire_levels, metered_levels = (
            median_levels(floors),
            median_levels(plains),
            median_levels(metereds),
        )
        runs = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
        parts += [
            f"### {shape.name} shape (concurrency {shape.concurrency})",
            "",
            "The floor (first run):",
            "",
            "```",
            format_table(floors[0]),
            "```",
            "",
            "tokenwire, sim engine (first run):",
            "",
            "```",
            format_table(plains[0]),
            "```",
            "",
            f"Server CPU per token, {runs}:",
            "",
            "```",
            format_comparison(compare(tokenwire_levels, floor_levels)),
            each_run(plains, floors),
            "```",
            "",
            f"tokenwire with `--metrics-port` (Prometheus metrics on), {runs}, against the floor and "
            "metrics off:",
            "",
            "```",
            format_comparison(compare(metered_levels, floor_levels)),
            each_run(metereds, floors),
            metrics_cost(metered_levels, tokenwire_levels),
            "```",
            "",
        ]
    print("\n".join(parts))
    write(args.out, parts, args.duration, args.processes, args.repeat)


if __name__ == "__main__":
    main()
