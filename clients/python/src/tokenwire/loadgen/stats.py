"""What one load level measured: per-request records in, one ``LevelResult`` out.

Every time is a ``time.monotonic_ns()`` reading taken by a client process;
CLOCK_MONOTONIC is one clock for every process on a machine, so records from
several client processes (and the coordinator's window) compare directly.

Definitions (the window is ``[window_start_ns, window_end_ns)``, after warm-up):

- tokens, events, aggregate tokens/s: delta events that arrived in the window.
- TTFT: from sending a request to its first delta carrying tokens, for
  requests sent in the window.
- tokens/s per user: per request, over its delta events in the window: the
  tokens after the first of those events divided by the time from the first
  to the last (so TTFT is not in it); mean and median over requests with at
  least two such events.
- inter-token latency (ITL): per token. An event of n tokens that arrived a
  gap g after the request's previous event counts n tokens of g/n each. The
  first event of a request has no gap (that is TTFT).
- added latency (paced simulation only): for each event after a request's
  first, ``arrival - (first arrival + (s - s0) * interval)`` where s is the
  step that produced the event's last token and s0 the first event's step,
  found by replaying the request's step sizes. The first event is the
  reference (s0 is 0 unless it was already coalesced), so it is left out.
  Two consequences: a reference event that was itself late shifts its
  request's values down (slightly negative values are normal), and a tick
  the engine skipped because it ran more than an interval late shows up in
  full in every later event of the requests it delayed.

Percentiles interpolate linearly between the two nearest ranks (numpy's
default).
"""

from __future__ import annotations

import array
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

StepSizes = Callable[[str], Iterator[int]]
"""Replays a request's schedule: its tokens per engine step, in order (an infinite iterator)."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What a client saw of one request (complete, failed, or cut off at the end of a level)."""

    request_id: str
    sent_ns: int
    """When the request was handed to gRPC."""
    started_ns: int
    """When its ``started`` event arrived; 0 if none did."""
    event_ns: array.array[int]
    """Arrival of each ``delta`` event, in order."""
    event_tokens: array.array[int]
    """Token ids in each ``delta`` event (same order)."""
    finished_ns: int
    """When its ``finished`` event arrived; 0 if none did."""
    completion_tokens: int
    """``finished.usage.completion_tokens``; -1 without a ``finished`` event."""
    error: str
    """The gRPC status code name of a failure, or empty."""


@dataclass(frozen=True, slots=True)
class SimSchedule:
    """The paced simulation the server runs (latency mode), to replay each request's steps."""

    step_ms: float
    step_sizes: StepSizes


@dataclass(frozen=True, slots=True)
class LevelResult:
    """One concurrency level's measurements (times in ms unless named otherwise)."""

    concurrency: int
    processes: int
    rpc: str
    duration_s: float
    """Length of the measurement window (after warm-up)."""
    requests_started: int
    requests_completed: int
    requests_failed: int
    tokens: int
    events: int
    tokens_per_event: float | None
    aggregate_tokens_per_s: float
    user_tokens_per_s_mean: float | None
    user_tokens_per_s_p50: float | None
    ttft_ms_p50: float | None
    ttft_ms_p99: float | None
    itl_ms_p50: float | None
    itl_ms_p90: float | None
    itl_ms_p99: float | None
    added_latency_ms_p50: float | None = None
    added_latency_ms_p99: float | None = None
    added_latency_ms_max: float | None = None
    schedule_mismatches: int | None = None
    """Events whose token count ends mid-step in the replayed schedule: non-zero means the
    simulation parameters given to the load generator differ from the server's."""
    server_cpu_s: float | None = None
    server_cpu_cores: float | None = None
    server_cpu_us_per_token: float | None = None
    server_cpu_us_per_event: float | None = None


def percentile(values: Sequence[float] | FloatArray, q: float) -> float | None:
    """The q-th percentile (0 to 100) of ``values``, linearly interpolated; None when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    return float(np.percentile(data, q))


def mean(values: Sequence[float] | FloatArray) -> float | None:
    """The arithmetic mean; None when empty."""
    data = np.asarray(values, dtype=np.float64)
    return float(data.mean()) if data.size else None


def token_events(record: RequestRecord) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Arrival times and token counts of the record's delta events that carry tokens."""
    arrivals = np.frombuffer(record.event_ns, dtype=np.int64) if record.event_ns else np.empty(0, np.int64)
    counts = np.asarray(record.event_tokens, dtype=np.int64)
    keep = counts > 0
    return arrivals[keep], counts[keep]


def itl_per_token_ms(arrivals: NDArray[np.int64], counts: NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """Each event's per-token gap (ms) and weight (its token count); the first event has none."""
    if arrivals.size < 2:
        return np.empty(0), np.empty(0)
    gaps = np.diff(arrivals).astype(np.float64) / 1e6
    weights = counts[1:].astype(np.float64)
    return gaps / weights, weights


def expand_weighted(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Each value repeated ``weight`` times (integral weights): a per-token sample."""
    if values.size == 0:
        return np.empty(0)
    return np.repeat(values, weights.astype(np.int64))


def added_latency_ms(
    arrivals: NDArray[np.int64],
    counts: NDArray[np.int64],
    sizes: Iterator[int],
    step_ms: float,
    max_tokens: int,
) -> tuple[FloatArray, int]:
    """Per event, how late it arrived against the replayed schedule (ms; NaN for the first).

    Returns the values (aligned with the events) and the number of events whose
    cumulative token count does not end on a step boundary of ``sizes`` (the
    last step may be cut short by ``max_tokens``, which is not a mismatch).
    """
    result = np.full(arrivals.size, np.nan)
    mismatches = 0
    step = -1
    produced = 0
    delivered = 0
    base_ns = 0.0
    first_step = 0
    step_ns = step_ms * 1e6
    for index in range(arrivals.size):
        delivered += int(counts[index])
        while produced < delivered:
            produced += next(sizes)
            step += 1
        if produced != delivered and delivered != max_tokens:
            mismatches += 1
        arrival = float(arrivals[index])
        if index == 0:
            base_ns = arrival
            first_step = step
            continue
        result[index] = (arrival - base_ns - (step - first_step) * step_ns) / 1e6
    return result, mismatches


def _in_window(times: NDArray[np.int64], start_ns: int, end_ns: int) -> NDArray[np.bool_]:
    return (times >= start_ns) & (times < end_ns)


@dataclass(slots=True)
class _Samples:
    ttft_ms: list[float]
    user_rates: list[float]
    itl: list[FloatArray]
    itl_weights: list[FloatArray]
    added: list[FloatArray]
    tokens: int = 0
    events: int = 0
    mismatches: int = 0


def _collect(
    records: Iterable[RequestRecord], start_ns: int, end_ns: int, sim: SimSchedule | None, max_tokens: int
) -> _Samples:
    samples = _Samples([], [], [], [], [])
    for record in records:
        arrivals, counts = token_events(record)
        if arrivals.size == 0:
            continue
        inside = _in_window(arrivals, start_ns, end_ns)
        samples.tokens += int(counts[inside].sum())
        samples.events += int(inside.sum())
        if start_ns <= record.sent_ns < end_ns:
            samples.ttft_ms.append((int(arrivals[0]) - record.sent_ns) / 1e6)
        window_arrivals = arrivals[inside]
        if window_arrivals.size >= 2:
            span_s = (int(window_arrivals[-1]) - int(window_arrivals[0])) / 1e9
            if span_s > 0:
                samples.user_rates.append(float(counts[inside][1:].sum()) / span_s)
        per_token, weights = itl_per_token_ms(arrivals, counts)
        later_inside = inside[1:]
        samples.itl.append(per_token[later_inside])
        samples.itl_weights.append(weights[later_inside])
        if sim is not None:
            added, mismatches = added_latency_ms(
                arrivals, counts, sim.step_sizes(record.request_id), sim.step_ms, max_tokens
            )
            samples.mismatches += mismatches
            samples.added.append(added[inside & ~np.isnan(added)])
    return samples


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """What a level ran: its load and the measurement window."""

    concurrency: int
    processes: int
    rpc: str
    window_start_ns: int
    window_end_ns: int
    max_tokens: int


def summarize(
    records: Sequence[RequestRecord],
    spec: LevelSpec,
    *,
    sim: SimSchedule | None = None,
    server_cpu_s: float | None = None,
) -> LevelResult:
    """Reduce one level's request records (and the server's CPU time in the window) to its result."""
    start, end = spec.window_start_ns, spec.window_end_ns
    window_s = (end - start) / 1e9
    samples = _collect(records, start, end, sim, spec.max_tokens)
    itl = expand_weighted(
        np.concatenate(samples.itl) if samples.itl else np.empty(0),
        np.concatenate(samples.itl_weights) if samples.itl_weights else np.empty(0),
    )
    added = np.concatenate(samples.added) if samples.added else np.empty(0)
    tokens, events = samples.tokens, samples.events
    cpu_s = server_cpu_s
    return LevelResult(
        concurrency=spec.concurrency,
        processes=spec.processes,
        rpc=spec.rpc,
        duration_s=window_s,
        requests_started=sum(1 for r in records if start <= r.sent_ns < end),
        requests_completed=sum(1 for r in records if r.finished_ns and start <= r.finished_ns < end),
        requests_failed=sum(1 for r in records if r.error and start <= r.sent_ns < end),
        tokens=tokens,
        events=events,
        tokens_per_event=tokens / events if events else None,
        aggregate_tokens_per_s=tokens / window_s if window_s > 0 else 0.0,
        user_tokens_per_s_mean=mean(samples.user_rates),
        user_tokens_per_s_p50=percentile(samples.user_rates, 50),
        ttft_ms_p50=percentile(samples.ttft_ms, 50),
        ttft_ms_p99=percentile(samples.ttft_ms, 99),
        itl_ms_p50=percentile(itl, 50),
        itl_ms_p90=percentile(itl, 90),
        itl_ms_p99=percentile(itl, 99),
        added_latency_ms_p50=percentile(added, 50) if sim else None,
        added_latency_ms_p99=percentile(added, 99) if sim else None,
        added_latency_ms_max=float(added.max()) if sim and added.size else None,
        schedule_mismatches=samples.mismatches if sim else None,
        server_cpu_s=cpu_s,
        server_cpu_cores=cpu_s / window_s if cpu_s is not None and window_s > 0 else None,
        server_cpu_us_per_token=cpu_s * 1e6 / tokens if cpu_s is not None and tokens else None,
        server_cpu_us_per_event=cpu_s * 1e6 / events if cpu_s is not None and events else None,
    )


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class LevelComparison(TypedDict):
    """Server CPU per token of tokenwire and of the floor at one concurrency."""

    concurrency: int
    tokenwire_cpu_us_per_token: float | None
    floor_cpu_us_per_token: float | None
    cpu_per_token_ratio: float | None
    """tokenwire / floor: how many times the floor's CPU tokenwire spends per token."""


class Comparison(TypedDict):
    """tokenwire against the bare grpc.aio floor, level by level and at the latency limit."""

    added_latency_p99_limit_ms: float
    levels: list[LevelComparison]
    tokenwire_max_aggregate_tokens_per_s: float | None
    """Highest aggregate tokens/s among tokenwire's levels whose p99 added latency is under the limit."""
    floor_max_aggregate_tokens_per_s: float | None
    max_aggregate_ratio: float | None
    """tokenwire / floor of the two above."""


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def max_aggregate_within(levels: Iterable[LevelResult], added_p99_limit_ms: float) -> float | None:
    """The highest aggregate tokens/s of the levels whose p99 added latency is below the limit."""
    rates = [
        level.aggregate_tokens_per_s
        for level in levels
        if level.added_latency_ms_p99 is not None and level.added_latency_ms_p99 < added_p99_limit_ms
    ]
    return max(rates) if rates else None


def compare(
    tokenwire: Sequence[LevelResult], floor: Sequence[LevelResult], *, added_p99_limit_ms: float = 1.0
) -> Comparison:
    """Ratios tokenwire / floor: server CPU per token at each concurrency both ran, and the highest
    aggregate tokens/s whose p99 added latency stays under ``added_p99_limit_ms``."""
    floor_by_concurrency = {level.concurrency: level for level in floor}
    rows: list[LevelComparison] = []
    for level in tokenwire:
        other = floor_by_concurrency.get(level.concurrency)
        if other is None:
            continue
        rows.append(
            LevelComparison(
                concurrency=level.concurrency,
                tokenwire_cpu_us_per_token=level.server_cpu_us_per_token,
                floor_cpu_us_per_token=other.server_cpu_us_per_token,
                cpu_per_token_ratio=_ratio(level.server_cpu_us_per_token, other.server_cpu_us_per_token),
            )
        )
    ours = max_aggregate_within(tokenwire, added_p99_limit_ms)
    theirs = max_aggregate_within(floor, added_p99_limit_ms)
    return Comparison(
        added_latency_p99_limit_ms=added_p99_limit_ms,
        levels=rows,
        tokenwire_max_aggregate_tokens_per_s=ours,
        floor_max_aggregate_tokens_per_s=theirs,
        max_aggregate_ratio=_ratio(ours, theirs),
    )
