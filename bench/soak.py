"""A bounded soak of the native engine through the API: ``make soak``.

Starts a real ``tokenwire serve`` (native engine, default settings) and, for
``--duration`` seconds (10 minutes by default), drives it from several
concurrent clients, each on its own channel, with a mix of completions,
cancelled calls, gRPC deadlines, request timeouts, Aborts, invalid requests,
slow readers and Sessions. Meanwhile it samples the server's resident memory
(/proc/<pid>/status) and its load (GetLoad). At the end it waits for the
server to go idle and reports: RSS over time (flat within 10% after the
warm-up?), slots still held (active, waiting and in-flight requests: the leak),
INTERNAL and UNKNOWN statuses, and any outcome the contract does not allow.
Writes the "Soak" section of docs/benchmarks.md and the samples as JSON under
bench/results/soak/. A benchmark, not a test: it asserts nothing.

    .venv/bin/python bench/soak.py                 # 10 minutes (make soak)
    .venv/bin/python bench/soak.py --duration 60 --no-doc
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import os
import random
import shlex
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from google.rpc import code_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from report_file import machine, replace_section
from serve_process import ROOT, Server, serving, stop_on_signals
from tokenwire.v1 import generation_pb2 as pb
from tokenwire.v1 import generation_pb2_grpc, model_pb2, model_pb2_grpc

RESULTS = ROOT / "bench" / "results" / "soak"
SECTION = "## Soak: the native engine under mixed traffic (issue 11)"
PROMPTS = (
    "Write a short poem about the sea.",
    "List three uses of copper.",
    "Explain what a hash table is.",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
)
LONG = 256
"""max_tokens of the generations that are meant to be cut short (cancel, deadline, Abort, slow reader)."""
SETTLE_S = 60.0
"""After the run: how long the server may take to free every slot before the rest counts as leaked."""
FLAT_WITHIN = 0.10


class Kind(enum.Enum):
    COMPLETE = "complete"
    CANCEL = "cancel"
    DEADLINE = "grpc deadline"
    TIMEOUT = "request timeout"
    ABORT = "abort"
    BAD_INPUT = "bad input"
    SLOW_READER = "slow reader"
    SESSION = "session"


WEIGHTS = {
    Kind.COMPLETE: 5,
    Kind.CANCEL: 2,
    Kind.DEADLINE: 1,
    Kind.TIMEOUT: 1,
    Kind.ABORT: 2,
    Kind.BAD_INPUT: 3,
    Kind.SLOW_READER: 1,
    Kind.SESSION: 2,
}
EXPECTED: dict[Kind, frozenset[str]] = {
    Kind.COMPLETE: frozenset({"finished END_OF_SEQUENCE", "finished LENGTH"}),
    Kind.CANCEL: frozenset({"CANCELLED by the client"}),
    Kind.DEADLINE: frozenset({"DEADLINE_EXCEEDED"}),
    Kind.TIMEOUT: frozenset({"finished DEADLINE"}),
    Kind.ABORT: frozenset({"finished CANCELLED"}),
    Kind.BAD_INPUT: frozenset({"INVALID_ARGUMENT", "abort ok"}),
    Kind.SLOW_READER: frozenset({"finished LENGTH", "RESOURCE_EXHAUSTED"}),
    Kind.SESSION: frozenset({"session ok"}),
}
"""What the contract allows each kind to end with (anything else is reported as unexpected).
A slow reader may be ended RESOURCE_EXHAUSTED once a stall timeout exists (issue 11, item 6)."""


@dataclass(slots=True)
class Tally:
    outcomes: Counter[tuple[Kind, str]] = field(default_factory=Counter)
    internal: Counter[str] = field(default_factory=Counter)
    """INTERNAL and UNKNOWN statuses, by message."""
    unexpected: Counter[str] = field(default_factory=Counter)

    def record(self, kind: Kind, outcome: str, detail: str = "") -> None:
        self.outcomes[kind, outcome] += 1
        if outcome in ("INTERNAL", "UNKNOWN"):
            self.internal[f"{outcome}: {detail[:160]}"] += 1
        if outcome not in EXPECTED[kind]:
            self.unexpected[f"{kind.value}: {outcome} {detail[:160]}".strip()] += 1


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    rss_mib: float
    active: int
    waiting: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class Stubs:
    generation: generation_pb2_grpc.GenerationServiceAsyncStub
    other: generation_pb2_grpc.GenerationServiceAsyncStub
    """On a second channel: where Aborts come from."""


def _finished(responses: list[pb.GenerateResponse]) -> str:
    last = responses[-1] if responses else None
    if last is None or last.WhichOneof("event") != "finished":
        return "no finished event"
    return f"finished {pb.FinishReason.Name(last.finished.reason).removeprefix('FINISH_REASON_')}"


def _request(rng: random.Random, max_tokens: int, *, ignore_eos: bool = False) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        text=rng.choice(PROMPTS),
        sampling=pb.SamplingParams(temperature=rng.choice([0.0, 0.7, 1.0])),
        stopping=pb.StoppingCriteria(max_tokens=max_tokens, ignore_eos=ignore_eos),
    )


async def _read_all(call: aio.UnaryStreamCall[pb.GenerateRequest, pb.GenerateResponse]) -> str:
    return _finished(await _rest(call))


async def _rest(
    call: aio.UnaryStreamCall[pb.GenerateRequest, pb.GenerateResponse],
) -> list[pb.GenerateResponse]:
    """The call's remaining events (read with ``read()``: gRPC forbids mixing it with iteration)."""
    responses = []
    while isinstance(response := await call.read(), pb.GenerateResponse):
        responses.append(response)
    return responses


async def complete(stubs: Stubs, rng: random.Random, _: str) -> str:
    return await _read_all(stubs.generation.Generate(_request(rng, rng.randint(4, 24)), timeout=120))


async def cancel(stubs: Stubs, rng: random.Random, _: str) -> str:
    call = stubs.generation.Generate(_request(rng, LONG, ignore_eos=True), timeout=120)
    deltas = rng.randint(1, 4)
    while isinstance(response := await call.read(), pb.GenerateResponse):
        deltas -= response.WhichOneof("event") == "delta"
        if deltas <= 0:
            call.cancel()
            return "CANCELLED by the client"
    return "ran to the end"


async def deadline(stubs: Stubs, rng: random.Random, _: str) -> str:
    return await _read_all(
        stubs.generation.Generate(_request(rng, LONG, ignore_eos=True), timeout=rng.uniform(0.2, 1.0))
    )


async def request_timeout(stubs: Stubs, rng: random.Random, _: str) -> str:
    request = _request(rng, LONG, ignore_eos=True)
    request.timeout.FromMilliseconds(rng.randint(200, 1000))
    return await _read_all(stubs.generation.Generate(request, timeout=120))


async def abort(stubs: Stubs, rng: random.Random, request_id: str) -> str:
    request = _request(rng, LONG, ignore_eos=True)
    request.request_id = request_id
    call = stubs.generation.Generate(request, timeout=120)
    responses = []
    while isinstance(response := await call.read(), pb.GenerateResponse):
        responses.append(response)
        if response.WhichOneof("event") == "delta" and len(responses) == 2:
            await stubs.other.Abort(pb.AbortRequest(request_id=request_id), timeout=30)
    return _finished(responses)


def _bad_requests(rng: random.Random) -> pb.GenerateRequest:
    request = _request(rng, 8)
    match rng.randrange(9):
        case 0:
            request.sampling.top_p = 5.0
        case 1:
            request.text = ""
        case 2:
            request.chat.messages.add(role="narrator", content="hi")
        case 3:
            request.stopping.max_tokens = 0
        case 4:
            request.output.logprobs, request.output.top_logprobs = True, 21
        case 5:
            request.stopping.stop_token_ids.extend([10**6] * rng.randint(1, 8))
        case 6:
            request.request_id = "x" * 200
        case 7:
            request.timeout.seconds = -1
        case _:
            request.speculative.draft_length = 17
    return request


async def bad_input(stubs: Stubs, rng: random.Random, _: str) -> str:
    if rng.random() < 0.1:  # an Abort with an over-long id: harmless, or refused
        await stubs.other.Abort(pb.AbortRequest(request_id="y" * 300), timeout=30)
        return "abort ok"
    return await _read_all(stubs.generation.Generate(_bad_requests(rng), timeout=120))


async def slow_reader(stubs: Stubs, rng: random.Random, _: str) -> str:
    """Reads the first event, stops reading for a few seconds, then reads the rest."""
    call = stubs.generation.Generate(_request(rng, 48, ignore_eos=True), timeout=120)
    first = await call.read()
    await asyncio.sleep(rng.uniform(2.0, 6.0))
    responses = [first] if isinstance(first, pb.GenerateResponse) else []
    return _finished([*responses, *await _rest(call)])


async def session(stubs: Stubs, rng: random.Random, request_id: str) -> str:
    """Three generations on one stream; the long one is cancelled after its first delta."""
    call = stubs.generation.Session(timeout=120)
    ids = {f"{request_id}-short": rng.randint(2, 12), f"{request_id}-other": rng.randint(2, 12)}
    long_id = f"{request_id}-long"
    for rid, max_tokens in (*ids.items(), (long_id, LONG)):
        start = _request(rng, max_tokens, ignore_eos=rid == long_id)
        start.request_id = rid
        await call.write(pb.SessionRequest(start=start))
    finished: dict[str, int] = {}
    cancel_sent = False
    while isinstance(response := await call.read(), pb.SessionResponse):
        event = response.WhichOneof("event")
        if response.request_id == long_id and event == "delta" and not cancel_sent:
            await call.write(pb.SessionRequest(cancel=pb.SessionCancel(request_id=long_id)))
            cancel_sent = True
        if event == "error":
            call.cancel()
            return f"error event {code_pb2.Code.Name(response.error.code)}"
        if event == "finished":
            finished[response.request_id] = response.finished.reason
            if len(finished) == 3:
                await call.done_writing()
    # The short ones may end at max_tokens or at the model's end of sequence; the long one is cancelled.
    ended_well = finished.keys() == {*ids, long_id} and finished[long_id] == pb.FINISH_REASON_CANCELLED
    ended_well = ended_well and all(
        finished[rid] in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_END_OF_SEQUENCE) for rid in ids
    )
    return "session ok" if ended_well else f"session ended with {sorted(finished.values())}"


ACTIONS: dict[Kind, Callable[[Stubs, random.Random, str], Awaitable[str]]] = {
    Kind.COMPLETE: complete,
    Kind.CANCEL: cancel,
    Kind.DEADLINE: deadline,
    Kind.TIMEOUT: request_timeout,
    Kind.ABORT: abort,
    Kind.BAD_INPUT: bad_input,
    Kind.SLOW_READER: slow_reader,
    Kind.SESSION: session,
}


async def client(index: int, address: str, until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed * 1000 + index)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    async with aio.insecure_channel(address) as channel, aio.insecure_channel(address) as other:
        stubs = Stubs(
            generation_pb2_grpc.GenerationServiceStub(channel),
            generation_pb2_grpc.GenerationServiceStub(other),
        )
        number = 0
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            number += 1
            try:
                outcome = await ACTIONS[kind](stubs, rng, f"soak-{index}-{number}")
                tally.record(kind, outcome)
            except aio.AioRpcError as error:
                tally.record(kind, error.code().name, error.details() or "")


async def sample_until(
    server: Server,
    model: model_pb2_grpc.ModelServiceAsyncStub,
    started: float,
    stop: asyncio.Event,
    every_s: float,
    samples: list[Sample],
) -> None:
    while True:
        load = await model.GetLoad(model_pb2.GetLoadRequest(), timeout=30)
        samples.append(
            Sample(
                round(time.monotonic() - started, 1),
                round(server.memory().rss_mib, 1),
                load.active_requests,
                load.waiting_requests,
                load.in_flight_requests,
            )
        )
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            return
        except TimeoutError:
            pass


async def settle(model: model_pb2_grpc.ModelServiceAsyncStub) -> model_pb2.GetLoadResponse:
    """The load once idle, or after ``SETTLE_S`` (what is left then has leaked)."""
    until = time.monotonic() + SETTLE_S
    while True:
        load = await model.GetLoad(model_pb2.GetLoadRequest(), timeout=30)
        idle = (load.active_requests, load.waiting_requests, load.in_flight_requests) == (0, 0, 0)
        if idle or time.monotonic() > until:
            return load
        await asyncio.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Result:
    command: str
    date: str
    machine: str
    duration_s: float
    clients: int
    samples: list[Sample]
    outcomes: dict[str, int]
    internal: dict[str, int]
    unexpected: dict[str, int]
    leaked: dict[str, int]
    health: str
    load_average: tuple[float, float]
    warmup_s: float


async def soak(args: argparse.Namespace) -> Result:
    load_before = os.getloadavg()[0]
    async with serving(("--engine", "native", "--log-level", "warning")) as server:
        model = model_pb2_grpc.ModelServiceStub(server.channel)
        tally, samples, stop = Tally(), list[Sample](), asyncio.Event()
        started = time.monotonic()
        until = started + args.duration
        sampler = asyncio.create_task(sample_until(server, model, started, stop, args.sample_every, samples))
        clients = [
            asyncio.create_task(client(i, server.address, until, tally, args.seed))
            for i in range(args.clients)
        ]
        # Clients finish what they started; give them a bounded while, then cut them off.
        _, late = await asyncio.wait(clients, timeout=args.duration + 180)
        for task in late:
            task.cancel()
        for task in clients:
            if not task.cancelled() and (error := task.exception()) is not None:
                tally.unexpected[f"client crashed: {type(error).__name__}: {error}"[:200]] += 1
        leaked = await settle(model)
        stop.set()
        await sampler
        samples.append(
            Sample(
                round(time.monotonic() - started, 1),
                round(server.memory().rss_mib, 1),
                leaked.active_requests,
                leaked.waiting_requests,
                leaked.in_flight_requests,
            )
        )
        check = server.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        health = await check(health_pb2.HealthCheckRequest(), timeout=30)
    return Result(
        command=f".venv/bin/python bench/soak.py {shlex.join(args.argv)}" if args.argv else "make soak",
        date=time.strftime("%Y-%m-%d"),
        machine=machine(),
        duration_s=args.duration,
        clients=args.clients,
        samples=samples,
        outcomes={
            f"{kind.value}: {outcome}": n
            for (kind, outcome), n in sorted(
                tally.outcomes.items(), key=lambda item: (item[0][0].value, item[0][1])
            )
        },
        internal=dict(tally.internal),
        unexpected=dict(tally.unexpected),
        leaked={
            "active": leaked.active_requests,
            "waiting": leaked.waiting_requests,
            "in_flight": leaked.in_flight_requests,
        },
        health=health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
        load_average=(load_before, os.getloadavg()[0]),
        warmup_s=args.duration * args.warmup,
    )


def rss_spread(result: Result) -> tuple[float, float, float]:
    """After the warm-up: lowest and highest RSS (MiB), and their spread relative to the lowest."""
    after = [s.rss_mib for s in result.samples if s.t_s >= result.warmup_s] or [result.samples[-1].rss_mib]
    low, high = min(after), max(after)
    return low, high, (high - low) / low


def section(result: Result) -> str:
    low, high, spread = rss_spread(result)
    requests = sum(result.outcomes.values())
    leaked = result.leaked
    rows = [f"| {k} | {n} |" for k, n in result.outcomes.items()]
    minute_marks = sorted(
        {
            min(result.samples, key=lambda s: abs(s.t_s - m))
            for m in range(0, int(result.samples[-1].t_s) + 60, 60)
        },
        key=lambda s: s.t_s,
    )
    rss_rows = [
        f"| {s.t_s:.0f} | {s.rss_mib:.0f} | {s.active} | {s.waiting} | {s.in_flight} |" for s in minute_marks
    ]
    problems = [f"- {n} x {what}" for what, n in {**result.internal, **result.unexpected}.items()] or [
        "- none"
    ]
    verdict = "yes" if spread <= FLAT_WITHIN else "no"
    return "\n".join(
        [
            SECTION,
            "",
            f"Measured {result.date} on {result.machine}. 1-minute load average "
            f"{result.load_average[0]:.1f} at the start, {result.load_average[1]:.1f} at the end "
            "(other jobs shared the machine's cores during this run: latencies here mean little; "
            "memory, leaks and statuses are the point).",
            "",
            f"Command: `{result.command}`: one `tokenwire serve --engine native` (default settings) "
            f"on 127.0.0.1, {result.duration_s:.0f} s of traffic from {result.clients} concurrent clients "
            "(each on its own channels): completions, calls cancelled after a few deltas, gRPC "
            "deadlines, request timeouts, Aborts from a second channel, invalid requests (and Aborts "
            "with over-long ids), slow readers that stop reading for 2-6 s, and Sessions with a "
            "cancel. RSS from /proc/<pid>/status every few seconds; the first "
            f"{result.warmup_s:.0f} s are the warm-up.",
            "",
            "| result | value |",
            "|---|---|",
            f"| requests | {requests} |",
            f"| INTERNAL or UNKNOWN statuses | {sum(result.internal.values())} |",
            f"| outcomes the contract does not allow | {sum(result.unexpected.values())} |",
            f"| slots held {SETTLE_S:.0f} s after the run (active / waiting / in flight) | "
            f"{leaked['active']} / {leaked['waiting']} / {leaked['in_flight']} |",
            f"| health after the run | {result.health} |",
            f"| RSS after the warm-up, lowest to highest | {low:.0f} to {high:.0f} MiB "
            f"(spread {spread:.1%}; flat within {FLAT_WITHIN:.0%}: {verdict}) |",
            "",
            "RSS and load over time:",
            "",
            "| t (s) | RSS (MiB) | active | waiting | in flight |",
            "|---:|---:|---:|---:|---:|",
            *rss_rows,
            "",
            "Outcomes by kind:",
            "",
            "| kind: outcome | count |",
            "|---|---:|",
            *rows,
            "",
            "INTERNAL / UNKNOWN statuses and outcomes the contract does not allow:",
            "",
            *problems,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (default 600)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=0.25, help="fraction of the run that is warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="print the section, leave the doc alone")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    stop_on_signals()
    result = asyncio.run(soak(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(asdict(result), indent=1))
    text = section(result)
    print(text)
    if not args.no_doc:
        replace_section(args.out, text)


if __name__ == "__main__":
    main()
