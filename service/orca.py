"""Load reports: ORCA (the xDS standard Envoy and gRPC's load balancers read), WatchLoad and GetLoad.

One set of figures (``LoadFigures``) feeds three surfaces:

- GetLoad / WatchLoad (tokenwire.v1.ModelService), our own API;
- per call, the ``endpoint-load-metrics-bin`` trailer: a serialized
  ``xds.data.orca.v3.OrcaLoadReport`` on every call that ends OK, for
  per-request load reporting (gRPC's weighted round robin, Envoy);
- out of band, ``xds.service.orca.v3.OpenRcaService/StreamCoreMetrics``: the
  same report at the interval the client asks for (clamped to
  [``MIN_INTERVAL_S``, ``MAX_INTERVAL_S``]), until it cancels or the server drains.

In an OrcaLoadReport: ``cpu_utilization`` is this process's CPU time per wall
second over the CPUs it may use; ``application_utilization`` the busier of the
engine's slots and its KV cache (what saturates first); ``rps_fractional``
generations admitted per second; ``utilization`` and ``named_metrics`` carry
the rest under fixed names (``kv_cache``, ``slots``; ``queue_depth``,
``active_slots``, ``in_flight``).

The two ORCA messages come from ``service.orca_messages`` (defined there by
their wire format); they are used only here, behind functions with plain typed
signatures.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from service.metrics import Snapshot
from service.orca_messages import OrcaLoadReport, OrcaLoadReportRequest

ORCA_TRAILER = "endpoint-load-metrics-bin"
ORCA_SERVICE = "xds.service.orca.v3.OpenRcaService"
ORCA_METHOD = "StreamCoreMetrics"
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 60.0
DEFAULT_INTERVAL_S = 1.0
RATE_WINDOW_S = 10
"""Generations per second are counted over this many one-second buckets."""
CPU_SAMPLE_S = 0.5
"""CPU utilization is re-measured at most this often (reports in between reuse it)."""


@dataclass(frozen=True, slots=True)
class LoadFigures:
    active: int
    waiting: int
    in_flight: int
    slots: int
    kv_cache_utilization: float
    cpu_utilization: float
    requests_per_second: float

    @property
    def slot_utilization(self) -> float:
        return self.active / self.slots if self.slots else 0.0


class RateCounter:
    """Events per second over the last ``RATE_WINDOW_S`` whole seconds (bounded memory)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets = [0] * RATE_WINDOW_S
        self._second = int(clock())

    def _advance(self) -> None:
        now = int(self._clock())
        if now - self._second >= RATE_WINDOW_S:
            self._buckets = [0] * RATE_WINDOW_S
        else:
            for second in range(self._second + 1, now + 1):
                self._buckets[second % RATE_WINDOW_S] = 0
        self._second = max(self._second, now)

    def add(self) -> None:
        self._advance()
        self._buckets[self._second % RATE_WINDOW_S] += 1

    def per_second(self) -> float:
        self._advance()
        return sum(self._buckets) / RATE_WINDOW_S


class CpuMeter:
    """This process's CPU utilization since the previous sample (at most every ``CPU_SAMPLE_S``)."""

    def __init__(self) -> None:
        try:
            self._cpus = max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            self._cpus = max(1, os.cpu_count() or 1)
        self._wall = time.monotonic()
        self._cpu = time.process_time()
        self._value = 0.0

    def utilization(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        if wall - self._wall >= CPU_SAMPLE_S:
            self._value = min(1.0, max(0.0, (cpu - self._cpu) / (wall - self._wall) / self._cpus))
            self._wall, self._cpu = wall, cpu
        return self._value


class LoadTracker:
    """The figures, from the gauges' snapshot plus a request rate and CPU meter of its own.

    Owned by the event loop.
    """

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._rate = RateCounter()
        self._cpu = CpuMeter()

    def admitted(self) -> None:
        self._rate.add()

    def figures(self) -> LoadFigures:
        s = self._snapshot()
        kv = s.kv_cache_bytes_used / s.kv_cache_bytes_capacity if s.kv_cache_bytes_capacity else 0.0
        return LoadFigures(
            active=s.active,
            waiting=s.waiting,
            in_flight=s.in_flight,
            slots=s.slots,
            kv_cache_utilization=min(1.0, kv),
            cpu_utilization=self._cpu.utilization(),
            requests_per_second=self._rate.per_second(),
        )


def orca_report(figures: LoadFigures) -> bytes:
    """``figures`` as a serialized ``xds.data.orca.v3.OrcaLoadReport``."""
    report: Any = OrcaLoadReport(
        cpu_utilization=figures.cpu_utilization,
        application_utilization=max(figures.slot_utilization, figures.kv_cache_utilization),
        rps_fractional=figures.requests_per_second,
    )
    report.utilization["kv_cache"] = figures.kv_cache_utilization
    report.utilization["slots"] = figures.slot_utilization
    report.named_metrics["queue_depth"] = float(figures.waiting)
    report.named_metrics["active_slots"] = float(figures.active)
    report.named_metrics["in_flight"] = float(figures.in_flight)
    encoded: bytes = report.SerializeToString()
    return encoded


def requested_interval(request: bytes) -> float:
    """The report interval an ``OrcaLoadReportRequest`` asks for, clamped; raises ``ValueError``
    when the bytes are not one."""
    message: Any = OrcaLoadReportRequest()
    try:
        message.ParseFromString(request)
    except Exception as error:  # protobuf's DecodeError; the module is untyped
        raise ValueError(str(error)) from error
    return clamp_interval(message.report_interval.seconds + message.report_interval.nanos / 1e9)


def clamp_interval(seconds: float) -> float:
    if not seconds > 0:
        return DEFAULT_INTERVAL_S
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, seconds))


class OrcaService:
    """``OpenRcaService`` as a generic handler (the request is parsed in the behaviour)."""

    def __init__(self, figures: Callable[[], LoadFigures], closing: asyncio.Event) -> None:
        self._figures = figures
        self._closing = closing

    def handler(self) -> grpc.GenericRpcHandler:
        method: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_stream_rpc_method_handler(
            self._stream_core_metrics,
            request_deserializer=None,  # raw bytes: parsed (and refused) in the behaviour
            response_serializer=None,
        )
        return grpc.method_handlers_generic_handler(ORCA_SERVICE, {ORCA_METHOD: method})

    async def _stream_core_metrics(
        self, request: bytes, context: aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        try:
            interval = requested_interval(request)
        except ValueError:
            message = "the request is not an OrcaLoadReportRequest"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        while not self._closing.is_set():
            yield orca_report(self._figures())
            try:
                await asyncio.wait_for(self._closing.wait(), interval)
            except TimeoutError:
                continue
