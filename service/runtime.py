"""What the servicers share: the engine, the in-flight registry and the serving state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import assert_never

from opentelemetry.trace import Tracer

from engines.contract import Engine, EngineInfo
from service.drain import OpenStreams
from service.errors import Unavailable
from service.generation import GenerationRunner
from service.metrics import MetricsSink, NoMetrics, Snapshot
from service.offload import Offload
from service.orca import LoadTracker
from service.registry import RequestRegistry
from service.structured import FormatCompiler
from service.validation import Limits


class Phase(enum.Enum):
    LOADING = "loading"
    SERVING = "serving"
    DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    default_max_tokens: int
    max_samples: int = 16
    """The largest GenerateRequest.n accepted."""
    load_retry_after_s: float = 5.0
    """RetryInfo of calls refused while the model loads or the server drains."""
    stall_timeout_s: float | None = 30.0
    """Seconds a stream's reader may take nothing while output is pending before its generations
    are cancelled (RESOURCE_EXHAUSTED); None: never."""


class Runtime:
    """Owned by the event loop; servicers call ``require_serving`` before using the engine."""

    def __init__(
        self,
        engine: Engine,
        settings: RuntimeSettings,
        metrics: MetricsSink | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
        self.tracer = tracer
        """Spans for each generation; None: tracing is off."""
        self.load = LoadTracker(self.snapshot)
        self.registry = RequestRegistry(engine.cancel)
        self.runner = GenerationRunner(engine, self.registry)
        self.offload = Offload()
        self.formats = FormatCompiler(engine.compile_structured_output)
        self.streams = OpenStreams()
        self.phase = Phase.LOADING
        self._limits: Limits | None = None

    def mark_serving(self) -> None:
        info = self.engine.info
        self._limits = Limits(
            context_length=info.context_length,
            vocab_size=info.vocab_size,
            default_max_tokens=self.settings.default_max_tokens,
            default_speculation=info.speculative.method,
            default_draft_length=info.speculative.draft_length,
            speculation_methods=frozenset(info.speculative.available_methods) or None,
            unsupported=info.unsupported_fields,
            structured_output_kinds=frozenset(info.structured_output_kinds),
            max_samples=self.settings.max_samples,
        )
        if self.phase is Phase.LOADING:  # a drain that began while loading stays a drain
            self.phase = Phase.SERVING

    def admitted(self, rpc: str) -> None:
        """A generation was accepted on ``rpc``: counted for the metrics and the load reports."""
        self.metrics.admitted(rpc)
        self.load.admitted()

    def snapshot(self) -> Snapshot:
        """The metrics' gauges now (call on the event loop)."""
        serving = self.phase is Phase.SERVING
        load = self.engine.load() if serving else None
        return Snapshot(
            in_flight=len(self.registry),
            waiting=load.waiting_requests if load is not None else 0,
            active=load.active_requests if load is not None else 0,
            slots=self.engine.info.max_batch_size if serving else 0,
            kv_cache_bytes_used=load.kv_cache_bytes_used if load is not None else 0,
            kv_cache_bytes_capacity=load.kv_cache_bytes_capacity if load is not None else 0,
            serving=serving,
        )

    def draining(self) -> Unavailable:
        """What new work is refused with while the server drains."""
        return Unavailable("the server is shutting down", self.settings.load_retry_after_s)

    def require_serving(self) -> tuple[EngineInfo, Limits]:
        """The engine's info and limits; raises ``Unavailable`` unless serving."""
        match self.phase:
            case Phase.SERVING:
                assert self._limits is not None
                return self.engine.info, self._limits
            case Phase.LOADING:
                raise Unavailable("the model is still loading", self.settings.load_retry_after_s)
            case Phase.DRAINING:
                raise self.draining()
            case _:
                assert_never(self.phase)
