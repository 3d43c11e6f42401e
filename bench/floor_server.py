"""The bare grpc.aio floor: tokenwire's wire shapes and pacing with no logic at all.

Serves tokenwire.v1.GenerationService/Generate and /Session with the same
messages tokenwire sends (Started, Delta with token ids and text, Finished
with usage, timing and speculative stats), paced like the simulation engine,
but with no validation, tokenizer, detokenizer, stop strings, registry or
logging. Whatever tokenwire costs above this server is the front door's
overhead; ``python -m tokenwire.loadgen compare`` puts the two side by side.

Tokens come from ONE worker thread, as the simulation engine's do: each step
it hands every active stream's tokens to the event loop with one
``loop.call_soon_threadsafe`` call, on the engine's own clock
(``engines.sim.schedule.Pacer``). Two timing models, as in the simulation
engine (``engines.sim.config``):

- ``latency``: a step every ``--step-ms`` (3 ms); each active stream gets
  ``1 + accepted drafts`` tokens, drawn by ``engines.sim.schedule.step_sizes``
  (``--max-draft`` 3 drafts, each accepted in order with probability
  ``--acceptance`` 0.81).
- ``throughput``: one token per stream per step; a step takes
  ``--base-step-ms`` (2 ms) plus ``--per-stream-us`` (6 µs) per active stream.

A slow reader's pending tokens coalesce into its next event. Prints
``READY <port>`` once serving; stops on SIGINT or SIGTERM.

    .venv/bin/python bench/floor_server.py --port 50052 --mode latency
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import queue
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

import uvloop
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.sim.schedule import Pacer as SimPacer
from engines.sim.schedule import step_sizes
from service.durations import duration

Mode = Literal["latency", "throughput"]
GenerateContext = aio.ServicerContext[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse]
SessionContext = aio.ServicerContext[generation_pb2.SessionRequest, generation_pb2.SessionResponse]
AbortContext = aio.ServicerContext[generation_pb2.AbortRequest, generation_pb2.AbortResponse]
ResponseT = TypeVar("ResponseT", generation_pb2.GenerateResponse, generation_pb2.SessionResponse)
Event = generation_pb2.Started | generation_pb2.Delta | generation_pb2.Finished

MODEL = "floor"
DEFAULT_MAX_TOKENS = 256
TOKEN_IDS = tuple(range(1000, 1064))
"""What every delta carries as ids: a prefix of this list (cycled past its length)."""
TOKEN_TEXT = " tok"
"""The text of every token."""


@dataclass(frozen=True, slots=True)
class Pacing:
    """The simulated engine's timing model."""

    mode: Mode
    step_s: float
    acceptance: float
    max_draft: int
    seed: int
    base_step_s: float
    per_stream_s: float

    @property
    def draft_length(self) -> int:
        """Drafts per step: ``max_draft`` in latency mode, none in throughput mode."""
        return self.max_draft if self.mode == "latency" else 0

    def step_duration(self, active: int) -> float:
        """Seconds from one step to the next with ``active`` streams."""
        if self.mode == "latency":
            return self.step_s
        return self.base_step_s + self.per_stream_s * active


class FloorStream:
    """One generation. The worker thread owns the ``remaining``/``sizes`` side, the loop the rest."""

    def __init__(
        self,
        request_id: str,
        max_tokens: int,
        prompt_tokens: int,
        sink: asyncio.Queue[FloorStream | None],
        sizes: Iterator[int],
    ) -> None:
        self.request_id = request_id
        self.prompt_tokens = prompt_tokens
        self.sink = sink
        self.arrival_ns = time.monotonic_ns()
        # Worker thread side.
        self.sizes = sizes
        self.remaining = max_tokens
        self.steps = 0
        self.drafted = 0
        self.accepted = 0
        self.cancelled = False
        # Event loop side.
        self.pending = 0
        self.done = False
        self.queued = False
        self.started_sent = False
        self.finished_sent = False
        self.produced = 0
        self.first_token_ns = 0


Batch = list[tuple[FloorStream, int, bool]]


class Worker:
    """The one worker thread: steps every active stream on the simulation's clock, hands tokens over.

    Mirrors the simulation engine's loop: a stream is admitted at a tick and
    takes its first step on the next one; after idling, the schedule restarts
    at the tick that admits the newcomers; ``engines.sim.schedule.Pacer``
    keeps the ticks on an absolute schedule (skipping ticks more than a whole
    interval late), exactly as the engine's.
    """

    def __init__(self, pacing: Pacing, loop: asyncio.AbstractEventLoop) -> None:
        self._pacing = pacing
        self._loop = loop
        self._inbox: queue.SimpleQueue[FloorStream | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="floor-worker", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker thread and wait for it."""
        self._inbox.put(None)
        self._thread.join(timeout=5)

    def add(self, stream: FloorStream) -> None:
        """Admit ``stream`` at the next tick (callable from any thread)."""
        self._inbox.put(stream)

    def _newcomers(self, *, block: bool) -> list[FloorStream] | None:
        """Streams added since the last tick (waiting for one if ``block``); None when told to stop."""
        newcomers: list[FloorStream] = []
        try:
            item = self._inbox.get(block=block)
            while True:
                if item is None:
                    return None
                newcomers.append(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            return newcomers

    def _run(self) -> None:
        pacing = self._pacing
        pacer = SimPacer()
        active: list[FloorStream] = []
        while True:
            idle = not active
            newcomers = self._newcomers(block=idle)
            if newcomers is None:
                return
            if idle:
                pacer.restart()  # the tick that admits the newcomers is now
            batch: Batch = []
            still: list[FloorStream] = []
            for stream in active:
                if stream.cancelled:
                    continue
                count = min(next(stream.sizes), stream.remaining)
                stream.remaining -= count
                stream.steps += 1
                stream.drafted += pacing.draft_length
                stream.accepted += count - 1
                done = stream.remaining == 0
                batch.append((stream, count, done))
                if not done:
                    still.append(stream)
            still.extend(stream for stream in newcomers if not stream.cancelled)
            active = still
            interval = pacing.step_duration(len(active))
            if batch:
                self._loop.call_soon_threadsafe(_deliver, batch)
            pacer.wait(interval)


def _deliver(batch: Batch) -> None:
    """On the loop: add each stream's new tokens and wake its reader once."""
    for stream, count, done in batch:
        if stream.finished_sent:
            continue
        stream.pending += count
        stream.done = stream.done or done
        if not stream.queued:
            stream.queued = True
            stream.sink.put_nowait(stream)


def _token_ids(count: int) -> list[int]:
    if count <= len(TOKEN_IDS):
        return list(TOKEN_IDS[:count])
    return list(itertools.islice(itertools.cycle(TOKEN_IDS), count))


def _events(stream: FloorStream) -> list[Event]:
    """The messages owed for ``stream`` now: started, the coalesced pending tokens, finished.

    Built all at once: the caller yields between them, and tokens delivered
    meanwhile must wait for the next call rather than slip past a Finished.
    """
    stream.queued = False
    events: list[Event] = []
    if stream.finished_sent:
        return events
    if not stream.started_sent:
        stream.started_sent = True
        events.append(generation_pb2.Started(prompt_tokens=stream.prompt_tokens, model=MODEL))
    if stream.pending:
        count, stream.pending = stream.pending, 0
        if stream.produced == 0:
            stream.first_token_ns = time.monotonic_ns()
        stream.produced += count
        events.append(generation_pb2.Delta(token_ids=_token_ids(count), text=TOKEN_TEXT * count))
    if stream.done or stream.cancelled:
        stream.finished_sent = True
        events.append(_finished(stream))
    return events


def _finished(stream: FloorStream) -> generation_pb2.Finished:
    now = time.monotonic_ns()
    reason = (
        generation_pb2.FINISH_REASON_CANCELLED if stream.cancelled else generation_pb2.FINISH_REASON_LENGTH
    )
    message = generation_pb2.Finished(
        reason=reason,
        usage=generation_pb2.Usage(prompt_tokens=stream.prompt_tokens, completion_tokens=stream.produced),
        timing=generation_pb2.Timing(queued=duration(0.0), total=duration((now - stream.arrival_ns) / 1e9)),
        speculative=generation_pb2.SpeculativeStats(
            draft_tokens=stream.drafted, accepted_tokens=stream.accepted, decode_steps=stream.steps
        ),
    )
    if stream.first_token_ns:
        message.timing.time_to_first_token.CopyFrom(
            duration((stream.first_token_ns - stream.arrival_ns) / 1e9)
        )
    return message


class FloorServicer(generation_pb2_grpc.GenerationServiceServicer):
    """Generate and Session with no logic between the wire and the pacer."""

    def __init__(self, pacing: Pacing, worker: Worker) -> None:
        self._pacing = pacing
        self._worker = worker
        self._ids = itertools.count()

    def _open(
        self, request: generation_pb2.GenerateRequest, sink: asyncio.Queue[FloorStream | None]
    ) -> FloorStream:
        request_id = request.request_id or f"floor-{next(self._ids)}"
        max_tokens = (
            request.stopping.max_tokens if request.stopping.HasField("max_tokens") else DEFAULT_MAX_TOKENS
        )
        prompt_tokens = len(request.token_ids.ids) if request.HasField("token_ids") else len(request.text)
        pacing = self._pacing
        sizes = step_sizes(
            request_id, acceptance=pacing.acceptance, max_draft=pacing.draft_length, seed=pacing.seed
        )
        stream = FloorStream(request_id, max(max_tokens, 1), prompt_tokens, sink, sizes)
        stream.queued = True
        sink.put_nowait(stream)  # owes its Started event
        self._worker.add(stream)
        return stream

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: GenerateContext
    ) -> AsyncIterator[generation_pb2.GenerateResponse]:
        sink: asyncio.Queue[FloorStream | None] = asyncio.Queue()
        stream = self._open(request, sink)
        try:
            while not stream.finished_sent:
                await sink.get()
                for event in _events(stream):
                    yield _response(generation_pb2.GenerateResponse, stream.request_id, event)
        finally:
            stream.cancelled = True

    async def Session(
        self, request_iterator: AsyncIterator[generation_pb2.SessionRequest], context: SessionContext
    ) -> AsyncIterator[generation_pb2.SessionResponse]:
        sink: asyncio.Queue[FloorStream | None] = asyncio.Queue()
        active: dict[str, FloorStream] = {}
        reading = True

        async def read() -> None:
            try:
                async for message in request_iterator:
                    if message.HasField("start"):
                        stream = self._open(message.start, sink)
                        active[stream.request_id] = stream
                    elif (cancelled := active.get(message.cancel.request_id)) is not None:
                        cancelled.cancelled = True
                        if not cancelled.queued:
                            cancelled.queued = True
                            sink.put_nowait(cancelled)
            finally:
                sink.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while reading or active:
                item = await sink.get()
                if item is None:
                    reading = False
                    continue
                for event in _events(item):
                    yield _response(generation_pb2.SessionResponse, item.request_id, event)
                if item.finished_sent:
                    active.pop(item.request_id, None)
            await reader
        finally:
            reader.cancel()
            for stream in active.values():
                stream.cancelled = True
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def Abort(
        self, request: generation_pb2.AbortRequest, context: AbortContext
    ) -> generation_pb2.AbortResponse:
        """Not part of the floor (it keeps no registry): never cancels anything."""
        return generation_pb2.AbortResponse(cancelled=False)


def _response(
    kind: type[ResponseT],
    request_id: str,
    event: Event,
) -> ResponseT:
    if isinstance(event, generation_pb2.Delta):
        return kind(request_id=request_id, delta=event)
    if isinstance(event, generation_pb2.Started):
        return kind(request_id=request_id, started=event)
    return kind(request_id=request_id, finished=event)


async def serve(host: str, port: int, pacing: Pacing) -> None:
    """Serve until SIGINT or SIGTERM; prints ``READY <port>`` once the port is open."""
    loop = asyncio.get_running_loop()
    worker = Worker(pacing, loop)
    server = aio.server()
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(FloorServicer(pacing, worker), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind {host}:{port}")
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    worker.start()
    await server.start()
    print(f"READY {bound}", flush=True)
    try:
        await stopping.wait()
    finally:
        await server.stop(0)
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50052, help="0 picks a free port (see READY)")
    parser.add_argument("--mode", choices=("latency", "throughput"), default="latency")
    parser.add_argument("--step-ms", type=float, default=3.0, help="latency mode: step interval")
    parser.add_argument("--acceptance", type=float, default=0.81, help="latency mode: per-draft acceptance")
    parser.add_argument("--max-draft", type=int, default=3, help="latency mode: drafts per step")
    parser.add_argument("--seed", type=int, default=0, help="latency mode: seed of the step-size draws")
    parser.add_argument("--base-step-ms", type=float, default=2.0, help="throughput mode: fixed step cost")
    parser.add_argument("--per-stream-us", type=float, default=6.0, help="throughput mode: cost per stream")
    args = parser.parse_args(argv)
    pacing = Pacing(
        mode=args.mode,
        step_s=args.step_ms / 1e3,
        acceptance=args.acceptance,
        max_draft=args.max_draft,
        seed=args.seed,
        base_step_s=args.base_step_ms / 1e3,
        per_stream_s=args.per_stream_us / 1e6,
    )
    uvloop.run(serve(args.host, args.port, pacing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
