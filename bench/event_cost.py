"""What each layer of the Generate path costs the event loop's thread per event, measured in process.

The front-door benchmark (``make bench``) measures the whole server against the
floor, but on a shared VM its numbers move by 10-15% from run to run: too much
to see a change of a few microseconds per event. This measures the Python side
alone, with no network: a ``TokenwireServer`` with the sim engine (latency
mode, 3 ms steps) is started in this process, and ``--concurrency`` streams
read it at four depths, each adding a layer:

- ``engine``: ``Engine.generate`` (the worker thread's hand-off, the mailbox);
- ``runner``: plus ``GenerationRunner.run`` (detokenization, stop handling, events);
- ``responses``: plus ``GenerationServicer.responses`` (protobuf messages, metrics);
- ``full``: plus ``Generate`` and the call interceptor (stall watch, counting, ORCA).

The cost is the CPU time of the event loop's thread (``time.thread_time``) per
event over each round, the median of ``--rounds``. Every reader yields to the
loop once per event, as gRPC's send does; that part is in every depth alike.

    .venv/bin/python bench/event_cost.py [--concurrency 8] [--metrics]

To compare two checkouts, run each with ``PYTHONPATH`` set to it, at the same
time, one per core (``taskset -c 0`` and ``-c 1``), then swapped: shared
interference cancels in the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
import uvloop
from tokenwire.v1 import generation_pb2

from service import logs
from service.cli import _build_parser, _serve_config
from service.engine_choice import build_engine
from service.generation_servicer import GenerationServicer
from service.server import TokenwireServer

DEPTHS = ("engine", "runner", "responses", "full")
GENERATE = "/tokenwire.v1.GenerationService/Generate"


@dataclass(frozen=True, slots=True)
class _Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


class _Context:
    """The part of a grpc.aio servicer context the Generate path uses."""

    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_trailing_metadata(self, metadata: object) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: object = ()) -> None:
        self._code = code
        raise RuntimeError(f"aborted: {code.name} {details}")


def _request(max_tokens: int) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest(token_ids=generation_pb2.TokenIds(ids=list(range(100, 132))))
    request.stopping.max_tokens = max_tokens
    request.stopping.ignore_eos = True
    return request


async def measure(
    depth: str, concurrency: int, requests: int, rounds: int, serve_args: list[str], max_tokens: int = 256
) -> float:
    """Median microseconds of loop-thread CPU per event at ``depth``."""
    args = _build_parser().parse_args(
        ["serve", "--engine", "sim", "--port", "0", "--log-level", "warning", *serve_args]
    )
    config = _serve_config(args)
    logs.configure(config.log_format, config.log_level)
    server = TokenwireServer(config, build_engine(config))
    await server.start()
    await server.wait_ready()
    gc.freeze()  # as `tokenwire serve` does once the model is loaded
    if config.gc_young_threshold:
        gc.set_threshold(config.gc_young_threshold, 20, 100)
    runtime = server.runtime
    servicer = GenerationServicer(runtime)
    plain = grpc.unary_stream_rpc_method_handler(
        servicer.Generate,
        generation_pb2.GenerateRequest.FromString,
        generation_pb2.GenerateResponse.SerializeToString,
    )

    async def plain_handler(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        return plain

    request = _request(max_tokens)
    events = 0

    async def stream() -> AsyncIterator[object]:
        if depth == "full":
            wrapped = await server.interceptor.intercept_service(plain_handler, cast(Any, _Details(GENERATE)))
            assert wrapped is not None and wrapped.unary_stream is not None
            behaviour = cast(Callable[[Any, Any], AsyncIterator[object]], wrapped.unary_stream)
            async for response in behaviour(request, _Context()):
                yield response
            return
        prepared = await servicer.prepare(request, in_session=False)
        ticket = runtime.runner.claim(prepared)
        outputs: AsyncIterator[object]
        if depth == "engine":
            outputs = runtime.engine.generate(prepared.engine_request)
        elif depth == "runner":
            outputs = runtime.runner.run(prepared, ticket, time.monotonic())
        else:
            outputs = servicer.responses(prepared, ticket, time.monotonic(), generation_pb2.GenerateResponse)
        async for output in outputs:
            yield output

    async def reader(count: Callable[[], bool]) -> None:
        nonlocal events
        while count():
            async for _ in stream():
                events += 1
                await asyncio.sleep(0)  # gRPC's send yields to the loop once per message

    def budget(n: int) -> Callable[[], bool]:
        left = [n]

        def take() -> bool:
            left[0] -= 1
            return left[0] >= 0

        return take

    async def run_round(n: int) -> None:
        take = budget(n)
        await asyncio.gather(*(reader(take) for _ in range(concurrency)))

    await run_round(concurrency)  # warm-up
    costs = []
    for _ in range(rounds):
        events = 0
        started = time.thread_time()
        await run_round(requests)
        costs.append((time.thread_time() - started) / events * 1e6)
    await server.stop(0)
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=8, help="streams read at once")
    parser.add_argument("--requests", type=int, default=64, help="requests per round")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per request")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--metrics", action="store_true", help="serve with --metrics-port 0")
    parser.add_argument("--depths", default=",".join(DEPTHS), help="which depths, of " + ",".join(DEPTHS))
    args = parser.parse_args()
    serve_args = ["--metrics-port", "0"] if args.metrics else []
    previous = 0.0
    for depth in args.depths.split(","):
        cost: float = uvloop.run(
            measure(depth, args.concurrency, args.requests, args.rounds, serve_args, args.max_tokens)
        )
        print(f"{depth:10s} {cost:6.1f} µs/event  (+{cost - previous:.1f})", flush=True)
        previous = cost


if __name__ == "__main__":
    main()
