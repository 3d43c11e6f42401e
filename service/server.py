"""The grpc.aio server: servicers, health, reflection, model loading and graceful drain.

The port opens at once with health NOT_SERVING, so orchestrators can probe
while the model loads; it turns SERVING when the engine has started. On stop
it drains (``service.drain``): NOT_SERVING at once, new work refused
UNAVAILABLE with RetryInfo while the port stays open, generations in flight
given the grace period to finish, the rest cancelled with a final event each;
then gRPC and the engine stop.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from collections.abc import Mapping

import structlog
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from engines.contract import Engine
from service.auth import TokenAuth, load_policy
from service.config import ServeConfig
from service.drain import drain
from service.generation_servicer import GenerationServicer
from service.interceptor import CallInterceptor
from service.metrics import Metrics
from service.model_servicer import ModelServicer
from service.orca import OrcaService
from service.reflection import enable_reflection
from service.runtime import Phase, Runtime, RuntimeSettings
from service.tls import listener_risks, load_listener_security
from service.tracing import Tracing

log = structlog.get_logger(__name__)

FLUSH_S = 5.0
"""After the grace period: how long streams get to send their last events before gRPC stops."""
FINAL_GRACE_S = 1.0
"""gRPC's own grace at the very end, for status frames already on their way."""

SERVICE_NAMES = (
    generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name,
    model_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
)


def _version() -> str:
    try:
        return importlib.metadata.version("tokenwire")
    except importlib.metadata.PackageNotFoundError:
        return ""


class TokenwireServer:
    def __init__(
        self,
        config: ServeConfig,
        engine: Engine,
        *,
        environ: Mapping[str, str] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """Raises ``ConfigError`` for unusable TLS or token settings (``environ``: --auth-tokens-env's).

        ``tracing``: spans go there (a test's in-memory exporter); by default to
        ``config.otlp_endpoint``, or nowhere.
        """
        self._config = config
        self._engine = engine
        self._security = load_listener_security(config)
        self._policy = load_policy(config, os.environ if environ is None else environ)
        self.metrics = Metrics() if config.metrics_port is not None else None
        if tracing is None and config.otlp_endpoint is not None:
            tracing = Tracing.to_otlp(config.otlp_endpoint, service_version=_version())
        self.tracing = tracing
        self.runtime = Runtime(
            engine,
            RuntimeSettings(
                default_max_tokens=config.default_max_tokens,
                max_samples=config.max_samples,
                stall_timeout_s=config.stall_timeout_s or None,
            ),
            self.metrics,
            tracing.tracer if tracing is not None else None,
        )
        # Calls are counted first (refused ones too); token checks next: a refused caller's
        # bytes are never decoded.
        self.interceptor = CallInterceptor(
            metrics=self.metrics,
            tracer=tracing.tracer if tracing is not None else None,
            auth=TokenAuth(self._policy) if self._policy is not None else None,
            figures=self.runtime.load.figures,
        )
        self._server = aio.server(interceptors=[self.interceptor])
        self.metrics_port: int | None = None
        self._health = health.aio.HealthServicer()
        self._loading: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        """Open the port (health NOT_SERVING) and start loading the model; returns the bound port."""
        generation_pb2_grpc.add_GenerationServiceServicer_to_server(
            GenerationServicer(self.runtime), self._server
        )
        model_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.runtime), self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        orca = OrcaService(self.runtime.load.figures, self.runtime.streams.closing)
        self._server.add_generic_rpc_handlers((orca.handler(),))
        enable_reflection(self._server, (*SERVICE_NAMES, health.SERVICE_NAME))
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{self._config.host}:{self._config.port}"
        credentials = self._security.credentials
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        await self._server.start()
        if self.metrics is not None and self._config.metrics_port is not None:
            self.metrics.watch(self.runtime.snapshot, asyncio.get_running_loop())
            self.metrics_port = self.metrics.serve(self._config.host, self._config.metrics_port)
            log.info("metrics_listening", host=self._config.host, port=self.metrics_port, path="/metrics")
        log.info(
            "server_listening",
            host=self._config.host,
            port=self.port,
            engine=self._config.engine,
            tls=credentials is not None,
            client_certificates=self._security.client_certificates,
            token_auth=self._policy is not None,
        )
        risks = listener_risks(
            self._config.host,
            tls=credentials is not None,
            client_certificates=self._security.client_certificates,
            tokens=self._policy is not None,
        )
        if risks:
            log.warning("insecure_listener", host=self._config.host, risks=list(risks))
        self._loading = asyncio.create_task(self._load())
        return self.port

    async def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, status)

    async def _load(self) -> None:
        log.info("model_loading", engine=self._config.engine)
        await self._engine.start()
        info = self._engine.info
        self.runtime.mark_serving()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "model_ready",
            model=info.model_name,
            engine=info.engine_name,
            context_length=info.context_length,
            max_batch_size=info.max_batch_size,
        )

    async def wait_ready(self) -> None:
        """Wait until the model is loaded; re-raises a loading failure."""
        assert self._loading is not None, "start() first"
        await asyncio.shield(self._loading)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()

    # --- Drain and stop (see service.drain) -------------------------------------------------

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain, then stop gRPC and the engine; returns when everything has stopped.

        ``grace_s``: how long generations in flight may run on (default: the configured
        grace period); 0 cancels them at once, each still with its final event.
        """
        grace = self._config.grace_period_s if grace_s is None else grace_s
        self.runtime.phase = Phase.DRAINING
        await self._health.enter_graceful_shutdown()
        log.info("server_draining", grace_s=grace, generations=len(self.runtime.registry))
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        await drain(
            self.runtime.registry,
            self.runtime.streams,
            grace_s=grace,
            flush_s=FLUSH_S,
            refusal=self.runtime.draining(),
        )
        await self._server.stop(FINAL_GRACE_S)
        await self._engine.shutdown()
        self.runtime.offload.shutdown()
        self.runtime.formats.shutdown()
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # exports what is pending
        log.info("server_stopped")
