"""Prometheus metrics: what a dashboard and an alert need, served on ``--metrics-port``.

One ``Metrics`` per server, each with its own registry (two servers in one
process never mix their counts). Every label takes values from a fixed set
(method names of this server, gRPC status codes, rejection reasons, finish
reasons, speculation methods), never from what a caller sends, so the number
of series is bounded whatever the traffic.

Counters and histograms belong to the event loop: every update happens there
(the servicers, the interceptors), so they are plain numbers in lists and
dicts, with no lock (an update is a bisect and an add: a few hundred
nanoseconds on the per-event path). A scrape runs on the HTTP server's thread
and asks the event loop for one copy of everything, engine gauges included
(queue depth, slots, KV memory: the engine and the registry are the loop's
too), so a scrape never races the servicers and never sees half an update.

Without ``--metrics-port`` the server uses ``NoMetrics``: the same calls, doing
nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from engines.contract import FinishStats

# Buckets, in base units. Latencies span a 1,000 tokens/s engine (1 ms per token)
# to a loaded CPU one (seconds per step).
_LATENCY_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TOKEN_GAP_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_DURATION_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TOKENS = tuple(float(2**k) for k in range(0, 18))  # 1 .. 131072
_EVENT_TOKENS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0, 128.0, 256.0)

SNAPSHOT_TIMEOUT_S = 2.0
"""How long a scrape waits for the event loop's snapshot before leaving the gauges out."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The gauges' values, taken on the event loop."""

    in_flight: int
    waiting: int
    active: int
    slots: int
    kv_cache_bytes_used: int
    kv_cache_bytes_capacity: int
    serving: bool


class GenerationMeter(Protocol):
    """Times one generation's events (made by ``MetricsSink.generation``)."""

    def delta(self, tokens: int, now: float) -> None: ...

    def finished(
        self,
        *,
        reason: str,
        prompt_tokens: int,
        completion_tokens: int,
        stats: FinishStats,
        time_to_first_token_s: float | None,
        total_s: float,
    ) -> None: ...


class MetricsSink(Protocol):
    """What the servicers report; ``Metrics`` records it, ``NoMetrics`` drops it."""

    def rpc(self, method: str, code: str) -> None: ...

    def admitted(self, rpc: str) -> None: ...

    def rejected(self, rpc: str, reason: str) -> None: ...

    def generation(self, method: str) -> GenerationMeter: ...


class _NoMeter:
    def delta(self, tokens: int, now: float) -> None:
        pass

    def finished(
        self,
        *,
        reason: str,
        prompt_tokens: int,
        completion_tokens: int,
        stats: FinishStats,
        time_to_first_token_s: float | None,
        total_s: float,
    ) -> None:
        pass


_NO_METER = _NoMeter()


class NoMetrics:
    """Metrics off: every report is dropped at the cost of a call."""

    def rpc(self, method: str, code: str) -> None:
        pass

    def admitted(self, rpc: str) -> None:
        pass

    def rejected(self, rpc: str, reason: str) -> None:
        pass

    def generation(self, method: str) -> GenerationMeter:
        return _NO_METER


class LoopCounter:
    """A counter family owned by the event loop: values by label values, no lock."""

    __slots__ = ("doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, amount: float = 1.0, *label_values: str) -> None:
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def family(self, values: dict[tuple[str, ...], float]) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for label_values, value in values.items():
            family.add_metric(list(label_values), value)
        return family


class LoopHistogram:
    """A histogram owned by the event loop: bucket counts in a list, no lock."""

    __slots__ = ("counts", "doc", "name", "sum", "upper")

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...]) -> None:
        self.name, self.doc = name, doc
        self.upper = sorted(buckets)
        self.counts = [0] * (len(self.upper) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """``times`` observations of ``value`` (le is inclusive: the first bound >= value)."""
        self.counts[bisect.bisect_left(self.upper, value)] += times
        self.sum += value * times

    def family(self, counts: list[int], total: float) -> Metric:
        cumulative, running = [], 0
        for bound, count in zip([*map(floatToGoString, self.upper), "+Inf"], counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        return HistogramMetricFamily(self.name, self.doc, buckets=cumulative, sum_value=total)


class _Meter:
    __slots__ = ("_gaps", "_last", "_method", "_metrics", "_per_token", "_sizes")

    def __init__(self, metrics: Metrics, method: str) -> None:
        self._metrics = metrics
        self._method = method
        self._last: float | None = None  # the first event's gap is the time to first token
        self._sizes = metrics.tokens_per_event
        self._gaps = metrics.inter_event_latency
        self._per_token = metrics.time_per_output_token

    def delta(self, tokens: int, now: float) -> None:
        # Every event of every stream comes here: LoopHistogram.observe, written out inline.
        if tokens <= 0:
            return
        sizes = self._sizes
        sizes.counts[bisect.bisect_left(sizes.upper, tokens)] += 1
        sizes.sum += tokens
        last, self._last = self._last, now
        if last is not None:
            gap = now - last
            gaps = self._gaps
            gaps.counts[bisect.bisect_left(gaps.upper, gap)] += 1
            gaps.sum += gap
            per_token = self._per_token
            per_token.counts[bisect.bisect_left(per_token.upper, gap / tokens)] += tokens
            per_token.sum += gap

    def finished(
        self,
        *,
        reason: str,
        prompt_tokens: int,
        completion_tokens: int,
        stats: FinishStats,
        time_to_first_token_s: float | None,
        total_s: float,
    ) -> None:
        m = self._metrics
        m.finished.inc(1, reason)
        m.request_duration.observe(total_s)
        m.queue_duration.observe(stats.queued_s)
        if time_to_first_token_s is not None:
            m.time_to_first_token.observe(time_to_first_token_s)
        m.request_prompt_tokens.observe(prompt_tokens)
        m.request_completion_tokens.observe(completion_tokens)
        m.prompt_tokens.inc(prompt_tokens)
        m.completion_tokens.inc(completion_tokens)
        m.cached_prompt_tokens.inc(stats.cached_prompt_tokens)
        m.decode_steps.inc(stats.decode_steps)
        if stats.draft_tokens:
            m.draft_tokens.inc(stats.draft_tokens, self._method)
            m.accepted_draft_tokens.inc(stats.accepted_draft_tokens, self._method)


@dataclass(frozen=True, slots=True)
class _Copy:
    """Everything a scrape exposes, copied on the event loop."""

    gauges: Snapshot | None
    counters: list[tuple[LoopCounter, dict[tuple[str, ...], float]]]
    histograms: list[tuple[LoopHistogram, list[int], float]]


class _Exposition(Collector):
    """The loop-owned metrics, from one copy per scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        taken = self._metrics.copy()
        if taken is None:
            return
        for counter, values in taken.counters:
            yield counter.family(values)
        for histogram, counts, total in taken.histograms:
            yield histogram.family(counts, total)
        gauges = taken.gauges
        if gauges is None:
            return
        for name, doc, value in (
            (
                "tokenwire_generations_in_flight",
                "Generations accepted and not yet finished.",
                gauges.in_flight,
            ),
            ("tokenwire_engine_queue_depth", "Requests waiting for an engine slot.", gauges.waiting),
            ("tokenwire_engine_active_slots", "Engine slots holding a request.", gauges.active),
            ("tokenwire_engine_slots", "Engine slots (the most requests batched at once).", gauges.slots),
            (
                "tokenwire_kv_cache_used_bytes",
                "KV-cache memory held by requests.",
                gauges.kv_cache_bytes_used,
            ),
            ("tokenwire_kv_cache_capacity_bytes", "KV-cache memory budget.", gauges.kv_cache_bytes_capacity),
            (
                "tokenwire_serving",
                "1 when the model is loaded and the server accepts work.",
                int(gauges.serving),
            ),
        ):
            yield GaugeMetricFamily(name, doc, value=value)

    def describe(self) -> Iterable[Metric]:
        return []


class Metrics:
    """The server's metrics in their own registry (``registry``), served by ``serve``."""

    def __init__(self, *, process_collectors: bool = True) -> None:
        r = self.registry = CollectorRegistry()
        if process_collectors:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self._counters: list[LoopCounter] = []
        self._histograms: list[LoopHistogram] = []

        def counter(name: str, doc: str, *labels: str) -> LoopCounter:
            made = LoopCounter(name, doc, labels)
            self._counters.append(made)
            return made

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> LoopHistogram:
            made = LoopHistogram(name, doc, buckets)
            self._histograms.append(made)
            return made

        self.rpcs = counter("tokenwire_rpcs", "RPCs finished, by method and status code.", "method", "code")
        self.admitted_total = counter(
            "tokenwire_generations_admitted", "Generations accepted (validated, id claimed).", "rpc"
        )
        self.rejected_total = counter(
            "tokenwire_requests_rejected", "Calls or generations refused, by reason.", "rpc", "reason"
        )
        self.finished = counter(
            "tokenwire_generations_finished", "Generations that sent their final event, by reason.", "reason"
        )
        self.time_to_first_token = histogram(
            "tokenwire_time_to_first_token_seconds",
            "From a generation's arrival to its first token.",
            _LATENCY_S,
        )
        self.inter_event_latency = histogram(
            "tokenwire_inter_event_latency_seconds",
            "Between two consecutive token-carrying events of a generation.",
            _TOKEN_GAP_S,
        )
        self.time_per_output_token = histogram(
            "tokenwire_time_per_output_token_seconds",
            "An event's gap divided among its tokens (observed once per token).",
            _TOKEN_GAP_S,
        )
        self.request_duration = histogram(
            "tokenwire_request_duration_seconds",
            "From a generation's arrival to its final event.",
            _DURATION_S,
        )
        self.queue_duration = histogram(
            "tokenwire_queue_duration_seconds",
            "From submission to the engine until its prompt's forward pass began.",
            _LATENCY_S,
        )
        self.request_prompt_tokens = histogram(
            "tokenwire_request_prompt_tokens", "Prompt tokens per generation.", _TOKENS
        )
        self.request_completion_tokens = histogram(
            "tokenwire_request_completion_tokens", "Completion tokens per generation.", _TOKENS
        )
        self.tokens_per_event = histogram(
            "tokenwire_tokens_per_event", "Tokens carried by one delta event.", _EVENT_TOKENS
        )
        self.prompt_tokens = counter("tokenwire_prompt_tokens", "Prompt tokens of finished generations.")
        self.completion_tokens = counter("tokenwire_completion_tokens", "Tokens generated.")
        self.cached_prompt_tokens = counter(
            "tokenwire_prompt_tokens_cached", "Prompt tokens served from the prefix cache."
        )
        self.decode_steps = counter(
            "tokenwire_decode_steps", "Target-model forward passes that produced tokens."
        )
        self.draft_tokens = counter(
            "tokenwire_speculative_draft_tokens", "Draft tokens proposed, by speculation method.", "method"
        )
        self.accepted_draft_tokens = counter(
            "tokenwire_speculative_accepted_tokens", "Draft tokens accepted, by speculation method.", "method"
        )
        self._snapshot: Callable[[], Snapshot] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: WSGIServer | None = None
        r.register(_Exposition(self))

    # --- what the servicers report (on the event loop) ------------------------------------

    def rpc(self, method: str, code: str) -> None:
        self.rpcs.inc(1, method, code)

    def admitted(self, rpc: str) -> None:
        self.admitted_total.inc(1, rpc)

    def rejected(self, rpc: str, reason: str) -> None:
        self.rejected_total.inc(1, rpc, reason)

    def generation(self, method: str) -> GenerationMeter:
        return _Meter(self, method)

    # --- the exposition ---------------------------------------------------------------

    def watch(self, snapshot: Callable[[], Snapshot], loop: asyncio.AbstractEventLoop) -> None:
        """Take gauge values from ``snapshot`` and copies of everything on ``loop`` (the servicers')."""
        self._snapshot = snapshot
        self._loop = loop

    def _copy_now(self) -> _Copy:
        return _Copy(
            gauges=self._snapshot() if self._snapshot is not None else None,
            counters=[(c, dict(c.values)) for c in self._counters],
            histograms=[(h, list(h.counts), h.sum) for h in self._histograms],
        )

    def copy(self) -> _Copy | None:
        """Everything, copied on the event loop (directly when called there or before ``watch``);
        None when the loop does not answer within ``SNAPSHOT_TIMEOUT_S``."""
        loop = self._loop
        if loop is None:
            return self._copy_now()
        if loop.is_closed():
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return self._copy_now()

        async def take() -> _Copy:
            return self._copy_now()

        future = asyncio.run_coroutine_threadsafe(take(), loop)
        try:
            return future.result(SNAPSHOT_TIMEOUT_S)
        except (concurrent.futures.TimeoutError, RuntimeError):
            future.cancel()
            return None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` over HTTP on its own thread; returns the bound port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        server = self._server
        self._server = None
        if server is not None:
            server.shutdown()
            server.server_close()
