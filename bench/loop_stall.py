"""How long large inputs stall the server's event loop, as another client's stream sees it.

A ``tokenwire serve --engine sim`` process (3 ms steps, so a healthy stream gets a
delta every ~3 ms) serves one long "bystander" stream, read by a child process
that timestamps every delta. Meanwhile this process sends large requests, one
kind at a time: the worst gap between the bystander's deltas while each kind is
in flight is the stall it caused (a baseline window with no attack shows the
normal worst gap). The sim engine tokenizes exactly as the native one: the front
door's work is the same.

    make bench-stalls                              # writes a section of docs/benchmarks.md
    python bench/loop_stall.py --checkout /tmp/old # the same against another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio
from report_file import machine, replace_section
from serve_process import ROOT, serving, stop_on_signals
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

SECTION = "## Event-loop stalls under large inputs (bench/loop_stall.py)"
BYSTANDER_TOKENS = 4000


def _bystander(address: str, conn: multiprocessing.connection.Connection) -> None:
    """Child process: stream generations back to back until told to stop; send back the arrival
    time of every event (a new stream's ``started`` included, so a restart counts as a gap too)."""

    async def run() -> list[float]:
        arrivals: list[float] = []
        request = generation_pb2.GenerateRequest(
            text="Tell me a long story.",
            stopping=generation_pb2.StoppingCriteria(max_tokens=BYSTANDER_TOKENS, ignore_eos=True),
        )
        async with aio.insecure_channel(address) as channel:
            stub = generation_pb2_grpc.GenerationServiceStub(channel)
            conn.send("started")
            while not conn.poll():
                async for _ in stub.Generate(request):
                    arrivals.append(time.monotonic())
                    if conn.poll():
                        break
        return arrivals

    arrivals = asyncio.run(run())
    conn.recv()
    conn.send(arrivals)


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    send: Callable[[aio.Channel], Awaitable[str]]
    """Sends one request, returns its status code's name."""


def _chat(n: int) -> generation_pb2.Chat:
    return generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content="hi there")] * n)


def _text(n_bytes: int) -> str:
    return ("The quick brown fox jumps over the lazy dog. " * (n_bytes // 45 + 1))[:n_bytes]


async def _code(call: Awaitable[object]) -> str:
    try:
        await call
    except aio.AioRpcError as error:
        return str(error.code().name)
    return grpc.StatusCode.OK.name


def _generate(request: generation_pb2.GenerateRequest) -> Callable[[aio.Channel], Awaitable[str]]:
    async def send(channel: aio.Channel) -> str:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        return await _code(stub.Generate(request).read())

    return send


def _tokenize(request: model_pb2.TokenizeRequest) -> Callable[[aio.Channel], Awaitable[str]]:
    async def send(channel: aio.Channel) -> str:
        return await _code(model_pb2_grpc.ModelServiceStub(channel).Tokenize(request))

    return send


def attacks() -> list[Attack]:
    one_token = generation_pb2.StoppingCriteria(max_tokens=1)
    return [
        Attack(
            "Generate, chat of 100,000 messages",
            _generate(generation_pb2.GenerateRequest(chat=_chat(100_000))),
        ),
        Attack(
            "Tokenize, chat of 100,000 messages", _tokenize(model_pb2.TokenizeRequest(chat=_chat(100_000)))
        ),
        Attack(
            "Generate, chat of 4,000 messages",
            _generate(generation_pb2.GenerateRequest(chat=_chat(4000), stopping=one_token)),
        ),
        Attack("Generate, 4 MB of text", _generate(generation_pb2.GenerateRequest(text=_text(4_000_000)))),
        Attack("Generate, 600 KB of text", _generate(generation_pb2.GenerateRequest(text=_text(600_000)))),
        Attack("Tokenize, 600 KB of text", _tokenize(model_pb2.TokenizeRequest(text=_text(600_000)))),
        Attack(
            "Generate, 30 KB of text",
            _generate(generation_pb2.GenerateRequest(text=_text(30_000), stopping=one_token)),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    codes: str
    request_s: float
    worst_gap_ms: float


def _worst_gap(arrivals: list[float], start: float, end: float) -> float:
    """The longest wait for a delta within [start, end] (counting from the last one before it)."""
    inside = [t for t in arrivals if start <= t <= end]
    before = [t for t in arrivals if t < start]
    after = [t for t in arrivals if t > end]
    points = ([before[-1]] if before else []) + inside + ([after[0]] if after else [])
    gaps = [b - a for a, b in itertools.pairwise(points)]
    return max(gaps, default=float("nan")) * 1e3


async def measure(checkout: Path | None, repeats: int) -> list[Row]:
    flags = ("--engine", "sim", "--max-batch-size", "8", "--log-level", "warning")
    async with serving(flags, checkout=checkout) as server:
        # Spawned, not forked: a fork of a process with gRPC threads running can crash.
        spawn = multiprocessing.get_context("spawn")
        parent, child = spawn.Pipe()
        reader = spawn.Process(target=_bystander, args=(server.address, child), daemon=True)
        reader.start()
        assert parent.recv() == "started"
        await asyncio.sleep(1.0)
        windows: list[tuple[str, str, float, float]] = []
        start = time.monotonic()
        await asyncio.sleep(2.0)
        windows.append(("(none: baseline)", "-", start, time.monotonic()))
        async with aio.insecure_channel(
            server.address,
            options=[("grpc.max_send_message_length", 8 << 20), ("grpc.max_receive_message_length", 8 << 20)],
        ) as channel:
            for attack in attacks():
                codes: list[str] = []
                start = time.monotonic()
                for _ in range(repeats):
                    codes.append(await attack.send(channel))
                windows.append((attack.name, ", ".join(sorted(set(codes))), start, time.monotonic()))
                await asyncio.sleep(0.5)
        parent.send("stop")
        arrivals: list[float] = parent.recv()
        reader.join(timeout=30)
    return [
        Row(name, codes, (end - start) / (repeats if codes != "-" else 1), _worst_gap(arrivals, start, end))
        for name, codes, start, end in windows
    ]


def report(rows: list[Row], label: str) -> str:
    lines = [
        f"{label}:",
        "",
        "| request (sent one after another) | answer | seconds each | worst gap in another stream (ms) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.codes} | {r.request_s:.2f} | {r.worst_gap_ms:.0f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkout", type=Path, help="also measure this other checkout (e.g. an older commit)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="requests of each kind (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    stop_on_signals()
    parts = [
        SECTION,
        "",
        "`python bench/loop_stall.py --checkout <older checkout>`. A `tokenwire serve --engine sim` "
        "process (3 ms steps) streams one long generation to a reader in another process while large "
        "requests arrive, each kind sent "
        f"{args.repeats} times in a row; the table gives the longest wait between that stream's deltas "
        "while each kind was in flight (normally ~3 ms). Goal: under 50 ms.",
        "",
    ]
    if args.checkout is not None:
        before = asyncio.run(measure(args.checkout, args.repeats))
        parts += [report(before, f"Before (checkout `{args.checkout.name}`)"), ""]
        print(parts[-2])
    now = asyncio.run(measure(None, args.repeats))
    parts += [report(now, "Now"), "", f"Machine: {machine()}.", ""]
    print(parts[-4])
    replace_section(args.out, "\n".join(parts))


if __name__ == "__main__":
    main()
