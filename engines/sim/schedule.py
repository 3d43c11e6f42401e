"""The simulation's schedule: how many tokens each step yields, and when steps happen.

``step_sizes`` and ``start_offset`` are the per-request draws. They depend only
on the request id and the configuration, never on timing, so a load client
can replicate exactly what the engine will send for a request id it chose.

``Pacer`` fires the worker thread's ticks on an absolute schedule (each tick
is due one interval after the previous one was due, not after it ran), so
lateness never accumulates, and it records how late every tick was.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

_LATENESS_BUCKET_S = 10e-6
_LATENESS_BUCKETS = 10_000
"""10 µs buckets up to 100 ms; later ticks share the last bucket (the exact maximum is kept)."""


def step_sizes(request_id: str, *, acceptance: float, max_draft: int, seed: int) -> Iterator[int]:
    """Tokens per step for ``request_id``: an infinite iterator of values in ``[1, max_draft + 1]``.

    Each step yields the target's own token plus its accepted drafts: the
    ``max_draft`` drafts are checked in order, each accepted with probability
    ``acceptance``, and the first rejection ends the step. Exactly: one
    ``rng.random()`` per draft checked, accepted while it is ``< acceptance``,
    with ``rng = random.Random(f"{seed}:{request_id}")`` (string seeds are
    hashed with SHA-512, so this is the same in every process and Python
    version since 3.2). ``max_draft=0`` yields 1 forever without drawing.
    """
    if not 0.0 <= acceptance <= 1.0:
        raise ValueError(f"acceptance must be in [0, 1]; got {acceptance}")
    if max_draft < 0:
        raise ValueError(f"max_draft must be at least 0; got {max_draft}")
    rng = random.Random(f"{seed}:{request_id}")
    while True:
        size = 1
        while size <= max_draft and rng.random() < acceptance:
            size += 1
        yield size


def start_offset(request_id: str, period: int) -> int:
    """Where in a passage of ``period`` tokens the output of ``request_id`` starts (CRC-32 of the id)."""
    if period < 1:
        raise ValueError(f"period must be at least 1; got {period}")
    return zlib.crc32(request_id.encode()) % period


@dataclass(frozen=True, slots=True)
class PacingReport:
    """How punctually the worker's ticks fired (engine-side lateness, before any delivery)."""

    ticks: int
    """Ticks that fired after a wait (the first tick after idling is not counted)."""
    skipped_ticks: int
    """Ticks dropped because the worker was more than a whole interval late."""
    late_mean_s: float
    late_p50_s: float
    """Percentiles have 10 µs resolution."""
    late_p99_s: float
    late_p999_s: float
    late_max_s: float


class Pacer:
    """The worker thread's clock. Only that thread calls ``restart`` and ``wait``."""

    def __init__(self) -> None:
        self._due = time.monotonic()
        self._skipped = 0
        self._late_sum = 0.0
        self._late_max = 0.0
        self._histogram = [0] * _LATENESS_BUCKETS

    def restart(self) -> None:
        """The current moment is a tick: after idling, the schedule starts over from now."""
        self._due = time.monotonic()

    def wait(self, interval_s: float) -> None:
        """Sleep until the next tick, ``interval_s`` after the previous one was due.

        A tick more than a whole interval late skips ahead to the schedule's
        latest due tick instead of firing the missed ones back to back.
        """
        self._due += interval_s
        delay = self._due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        late = max(time.monotonic() - self._due, 0.0)
        if late > interval_s:
            missed = int(late // interval_s)
            self._due += missed * interval_s
            self._skipped += missed
        self._record(late)

    def _record(self, late: float) -> None:
        self._late_sum += late
        self._late_max = max(self._late_max, late)
        self._histogram[min(int(late / _LATENESS_BUCKET_S), _LATENESS_BUCKETS - 1)] += 1

    def report(self) -> PacingReport:
        """Lateness so far. Safe to call from another thread (a tick may land mid-read)."""
        histogram = list(self._histogram)
        ticks = sum(histogram)
        late_max = self._late_max
        return PacingReport(
            ticks=ticks,
            skipped_ticks=self._skipped,
            late_mean_s=self._late_sum / ticks if ticks else 0.0,
            late_p50_s=_percentile(histogram, ticks, 0.5, late_max),
            late_p99_s=_percentile(histogram, ticks, 0.99, late_max),
            late_p999_s=_percentile(histogram, ticks, 0.999, late_max),
            late_max_s=late_max,
        )


def _percentile(histogram: list[int], total: int, fraction: float, late_max: float) -> float:
    """Upper edge of the bucket holding the ``fraction`` quantile (never above the maximum)."""
    if total == 0:
        return 0.0
    rank = fraction * total
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return min((bucket + 1) * _LATENESS_BUCKET_S, late_max)
    return late_max
