"""Drives a running server at fixed concurrency levels from several client processes.

Each client process runs uvloop with one grpc.aio channel and holds its share
of a level's streams: a stream sends a request (Generate, or a ``start`` on
the process's one Session stream), records every event's arrival with
``time.monotonic_ns()``, and sends the next request as soon as one finishes.
The coordinator (this process) sets every level's start and end as absolute
monotonic times, samples the server's CPU time at the edges of the
measurement window, and reduces the records with ``stats.summarize``.

Request ids are ``lg-<process>-<n>``, chosen here so that a paced simulation's
schedule can be replayed per request (``SimParams``).
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import multiprocessing
import multiprocessing.queues
import queue
import time
import traceback
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

import grpc
from grpc import aio

from tokenwire.loadgen.sim_replay import replay_step_sizes
from tokenwire.loadgen.stats import (
    LevelResult,
    LevelSpec,
    RequestRecord,
    SimSchedule,
    process_cpu_seconds,
    summarize,
)
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

if TYPE_CHECKING:
    from ctypes import Array as CArray

    GenerationStub: TypeAlias = generation_pb2_grpc.GenerationServiceAsyncStub
    Progress: TypeAlias = CArray[ctypes.c_int64]
else:
    GenerationStub = "GenerationServiceAsyncStub"
    Progress = "CArray[ctypes.c_int64]"

Rpc = Literal["generate", "session"]

START_LEAD_S = 0.3
"""Time between sending a level's plan and its start: every process starts together."""
ERROR_BACKOFF_S = 0.01
"""Pause before a stream retries after a failed request, so a refusing server isn't hammered."""
REPORT_TIMEOUT_S = 60.0
PROMPT_TOKEN_IDS = tuple((index * 37) % 1000 + 100 for index in range(4096))
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class SimParams:
    """The paced simulation the server runs in latency mode (its flags, mirrored)."""

    step_ms: float
    acceptance: float = 0.81
    max_draft: int = 3
    seed: int = 0

    def schedule(self) -> SimSchedule:
        """The replayable schedule: the sim engine's step-size draws, replayed from their rule."""

        def sizes(request_id: str) -> Iterator[int]:
            return replay_step_sizes(
                request_id, acceptance=self.acceptance, max_draft=self.max_draft, seed=self.seed
            )

        return SimSchedule(step_ms=self.step_ms, step_sizes=sizes)


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """A load run: where, how hard, for how long."""

    address: str
    concurrency: tuple[int, ...]
    duration_s: float = 10.0
    warmup_s: float = 1.0
    """Run before each level's measurement window (its events are not counted)."""
    processes: int = 1
    rpc: Rpc = "generate"
    max_tokens: int = 512
    ignore_eos: bool = True
    prompt_tokens: int = 32
    server_pid: int | None = None
    sim: SimParams | None = None


@dataclass(frozen=True, slots=True)
class LevelProgress:
    """How far the current level is, for a progress display."""

    level: int
    levels: int
    concurrency: int
    elapsed_s: float
    total_s: float
    tokens: int
    """Tokens received so far in this level (warm-up included)."""


ProgressCallback = Callable[[LevelProgress], None]


@dataclass(frozen=True, slots=True)
class _LevelPlan:
    level: int
    streams: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class _WorkerReport:
    process: int
    level: int
    """-1 for the ready report."""
    records: list[RequestRecord]
    error: str = ""


@dataclass(slots=True)
class _Recording:
    request_id: str
    sent_ns: int = 0
    started_ns: int = 0
    event_ns: array[int] = field(default_factory=lambda: array("q"))
    event_tokens: array[int] = field(default_factory=lambda: array("i"))
    finished_ns: int = 0
    completion_tokens: int = -1
    error: str = ""

    def freeze(self) -> RequestRecord:
        return RequestRecord(
            request_id=self.request_id,
            sent_ns=self.sent_ns,
            started_ns=self.started_ns,
            event_ns=self.event_ns,
            event_tokens=self.event_tokens,
            finished_ns=self.finished_ns,
            completion_tokens=self.completion_tokens,
            error=self.error,
        )


def split(concurrency: int, processes: int) -> list[int]:
    """Each process's share of ``concurrency`` streams (as even as possible)."""
    base, extra = divmod(concurrency, processes)
    return [base + (1 if index < extra else 0) for index in range(processes)]


def _request(config: DriverConfig, request_id: str) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        request_id=request_id,
        token_ids=generation_pb2.TokenIds(ids=PROMPT_TOKEN_IDS[: max(config.prompt_tokens, 1)]),
        stopping=generation_pb2.StoppingCriteria(max_tokens=config.max_tokens, ignore_eos=config.ignore_eos),
    )


class _Client:
    """One client process's side of the load: its channel, its request ids, its records."""

    def __init__(self, index: int, config: DriverConfig, stub: GenerationStub, progress: Progress) -> None:
        self._index = index
        self._config = config
        self._stub = stub
        self._progress = progress
        self._ids = itertools.count()
        self.records: list[RequestRecord] = []

    def _new(self) -> _Recording:
        return _Recording(f"lg-{self._index}-{next(self._ids)}")

    def _observe(
        self,
        recording: _Recording,
        response: generation_pb2.GenerateResponse | generation_pb2.SessionResponse,
    ) -> bool:
        """Record one event; True when it ended the request."""
        now = time.monotonic_ns()
        kind = response.WhichOneof("event")
        if kind == "delta":
            count = len(response.delta.token_ids)
            recording.event_ns.append(now)
            recording.event_tokens.append(count)
            self._progress[self._index] += count
            return False
        if kind == "started":
            recording.started_ns = now
            return False
        if kind == "finished":
            recording.finished_ns = now
            recording.completion_tokens = response.finished.usage.completion_tokens
            return True
        if isinstance(response, generation_pb2.SessionResponse) and kind == "error":
            recording.error = _STATUS_NAMES.get(response.error.code, str(response.error.code))
            return True
        return False

    async def generate_stream(self) -> None:
        """One stream of back-to-back Generate calls, until cancelled."""
        while True:
            recording = self._new()
            request = _request(self._config, recording.request_id)
            recording.sent_ns = time.monotonic_ns()
            call = self._stub.Generate(request)
            try:
                async for response in call:
                    self._observe(recording, response)
            except aio.AioRpcError as error:
                recording.error = error.code().name
            finally:
                call.cancel()
                self.records.append(recording.freeze())
            if recording.error:
                await asyncio.sleep(ERROR_BACKOFF_S)

    async def session(self, streams: int) -> None:
        """``streams`` back-to-back generations on one Session stream, until cancelled."""
        while True:
            await self._one_session(streams)
            await asyncio.sleep(ERROR_BACKOFF_S)  # the whole call failed or ended: open another

    async def _one_session(self, streams: int) -> None:
        call = self._stub.Session()
        live: dict[str, _Recording] = {}
        outbox: asyncio.Queue[generation_pb2.SessionRequest] = asyncio.Queue()

        def start() -> None:
            recording = self._new()
            live[recording.request_id] = recording
            recording.sent_ns = time.monotonic_ns()
            outbox.put_nowait(
                generation_pb2.SessionRequest(start=_request(self._config, recording.request_id))
            )

        async def write() -> None:
            while True:
                await call.write(await outbox.get())

        writer = asyncio.create_task(write())
        for _ in range(streams):
            start()
        try:
            async for response in call:
                recording = live.get(response.request_id)
                if recording is not None and self._observe(recording, response):
                    self.records.append(live.pop(response.request_id).freeze())
                    start()
        except aio.AioRpcError as error:
            for recording in live.values():
                recording.error = error.code().name
        finally:
            writer.cancel()
            call.cancel()
            for recording in live.values():
                self.records.append(recording.freeze())
            await asyncio.wait([writer])  # its failure is the call's, reported above

    async def run_level(self, plan: _LevelPlan) -> list[RequestRecord]:
        """Run this process's streams from the plan's start to its end; returns their records."""
        self.records = []
        await _sleep_until(plan.start_ns)
        if self._config.rpc == "generate":
            tasks = [asyncio.create_task(self.generate_stream()) for _ in range(plan.streams)]
        else:
            tasks = [asyncio.create_task(self.session(plan.streams))] if plan.streams else []
        await _sleep_until(plan.end_ns)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome
        return self.records


async def _sleep_until(monotonic_ns: int) -> None:
    delay = (monotonic_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def _worker(
    index: int,
    config: DriverConfig,
    commands: multiprocessing.queues.Queue[_LevelPlan | None],
    reports: multiprocessing.queues.Queue[_WorkerReport],
    progress: Progress,
) -> None:
    async with aio.insecure_channel(config.address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        client = _Client(index, config, generation_pb2_grpc.GenerationServiceStub(channel), progress)
        reports.put(_WorkerReport(index, -1, []))
        while (plan := await asyncio.to_thread(commands.get)) is not None:
            records = await client.run_level(plan)
            reports.put(_WorkerReport(index, plan.level, records))


def _worker_main(
    index: int,
    config: DriverConfig,
    commands: multiprocessing.queues.Queue[_LevelPlan | None],
    reports: multiprocessing.queues.Queue[_WorkerReport],
    progress: Progress,
) -> None:
    """A client process: uvloop, one channel, the levels the coordinator sends."""
    import uvloop

    try:
        uvloop.run(_worker(index, config, commands, reports, progress))
    except BaseException:
        reports.put(_WorkerReport(index, -1, [], error=traceback.format_exc()))
        raise


class LoadError(RuntimeError):
    """A client process failed or did not report in time."""


class _Coordinator:
    def __init__(self, config: DriverConfig) -> None:
        self._config = config
        context = multiprocessing.get_context("spawn")  # grpc does not survive fork
        self._reports: multiprocessing.queues.Queue[_WorkerReport] = context.Queue()
        self._commands: list[multiprocessing.queues.Queue[_LevelPlan | None]] = [
            context.Queue() for _ in range(config.processes)
        ]
        self.progress: Progress = context.RawArray(ctypes.c_int64, config.processes)
        self._processes = [
            context.Process(
                target=_worker_main,
                args=(index, config, self._commands[index], self._reports, self.progress),
                name=f"loadgen-{index}",
                daemon=True,
            )
            for index in range(config.processes)
        ]

    def start(self) -> None:
        for process in self._processes:
            process.start()
        self.collect(-1)

    def collect(self, level: int) -> list[RequestRecord]:
        """Every process's report for ``level`` (-1: the ready reports), or LoadError."""
        records: list[RequestRecord] = []
        pending = set(range(len(self._processes)))
        deadline = time.monotonic() + REPORT_TIMEOUT_S
        while pending:
            try:
                report = self._reports.get(timeout=0.2)
            except queue.Empty:
                dead = [index for index in pending if not self._processes[index].is_alive()]
                if dead:
                    raise LoadError(
                        f"client process {dead[0]} exited without reporting level {level}"
                    ) from None
                if time.monotonic() > deadline:
                    raise LoadError(f"client processes did not report level {level} in time") from None
                continue
            if report.error:
                raise LoadError(f"client process {report.process} failed:\n{report.error}")
            pending.discard(report.process)
            records.extend(report.records)
        return records

    def send(self, plans: list[_LevelPlan]) -> None:
        for commands, plan in zip(self._commands, plans, strict=True):
            commands.put(plan)

    def tokens(self) -> int:
        return sum(int(value) for value in self.progress)

    def stop(self) -> None:
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def _wait_until(monotonic_ns: int, tick: Callable[[], None]) -> None:
    """Sleep until the given time, calling ``tick`` about ten times a second."""
    while (remaining := (monotonic_ns - time.monotonic_ns()) / 1e9) > 0:
        time.sleep(min(remaining, 0.1))
        tick()


RecordsCallback = Callable[[LevelResult, list[RequestRecord]], None]


def run(
    config: DriverConfig,
    *,
    on_progress: ProgressCallback | None = None,
    on_records: RecordsCallback | None = None,
) -> list[LevelResult]:
    """Run every concurrency level against the server; one result per level, in order.

    ``on_progress`` is called about ten times a second; ``on_records`` gets each
    level's result with the raw per-request records it was computed from.
    """
    if config.processes < 1 or not config.concurrency or min(config.concurrency) < 1:
        raise ValueError("need at least one process and positive concurrency levels")
    schedule = config.sim.schedule() if config.sim is not None else None
    coordinator = _Coordinator(config)
    results: list[LevelResult] = []
    coordinator.start()
    try:
        for level, concurrency in enumerate(config.concurrency):
            result, records = _run_level(coordinator, config, level, concurrency, schedule, on_progress)
            if on_records is not None:
                on_records(result, records)
            results.append(result)
    finally:
        coordinator.stop()
    return results


def _run_level(
    coordinator: _Coordinator,
    config: DriverConfig,
    level: int,
    concurrency: int,
    schedule: SimSchedule | None,
    on_progress: ProgressCallback | None,
) -> tuple[LevelResult, list[RequestRecord]]:
    start_ns = time.monotonic_ns() + int(START_LEAD_S * 1e9)
    window_ns = start_ns + int(config.warmup_s * 1e9)
    end_ns = window_ns + int(config.duration_s * 1e9)
    total_s = (end_ns - start_ns) / 1e9
    tokens_before = coordinator.tokens()
    coordinator.send(
        [_LevelPlan(level, share, start_ns, end_ns) for share in split(concurrency, config.processes)]
    )

    def tick() -> None:
        if on_progress is not None:
            elapsed = max(time.monotonic_ns() - start_ns, 0) / 1e9
            tokens = coordinator.tokens() - tokens_before
            on_progress(LevelProgress(level, len(config.concurrency), concurrency, elapsed, total_s, tokens))

    _wait_until(window_ns, tick)
    cpu_start = process_cpu_seconds(config.server_pid) if config.server_pid is not None else None
    _wait_until(end_ns, tick)
    cpu_end = process_cpu_seconds(config.server_pid) if config.server_pid is not None else None
    tick()
    records = coordinator.collect(level)
    spec = LevelSpec(
        concurrency=concurrency,
        processes=config.processes,
        rpc=config.rpc,
        window_start_ns=window_ns,
        window_end_ns=end_ns,
        max_tokens=config.max_tokens,
    )
    cpu_s = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
    return summarize(records, spec, sim=schedule, server_cpu_s=cpu_s), records
