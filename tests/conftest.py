"""A real tokenwire server on 127.0.0.1 (ephemeral port) with the real embedded model.

The server runs on its own thread and event loop, as it would in its own
process: tests talk to it only through gRPC, each on pytest's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2_grpc, model_pb2_grpc

from service.config import ServeConfig
from service.engine_choice import build_engine
from service.server import TokenwireServer
from service.tracing import Tracing
from tests.stubs import GenerationStub, ModelStub
from tests.tls_certs import TOKEN_ALL, TOKEN_MODEL_ONLY, TestPki, make_test_pki

TEST_BATCH_SIZE = 4


@dataclass(frozen=True, slots=True)
class LiveServer:
    address: str
    server: TokenwireServer
    loop: asyncio.AbstractEventLoop


def serve_in_thread(
    config: ServeConfig, *, wait_ready: bool = True, tracing: Tracing | None = None
) -> tuple[LiveServer, threading.Thread]:
    """Start a server on its own thread and loop; returns once it listens (and, by default, serves).

    ``tracing``: where the server's spans go (default: as ``config`` says).
    """
    started: concurrent.futures.Future[LiveServer] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()

    async def boot() -> None:
        server = TokenwireServer(config, build_engine(config), tracing=tracing)
        port = await server.start()
        if wait_ready:
            await server.wait_ready()
        started.set_result(LiveServer(f"127.0.0.1:{port}", server, loop))

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(boot())

        def report_failure(done: asyncio.Task[None]) -> None:
            if not done.cancelled() and (error := done.exception()) is not None:
                started.set_exception(error)

        task.add_done_callback(report_failure)
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="tokenwire-test-server", daemon=True)
    thread.start()
    return started.result(timeout=300), thread


def stop_live_server(live: LiveServer, thread: threading.Thread) -> None:
    asyncio.run_coroutine_threadsafe(live.server.stop(0), live.loop).result(timeout=60)
    live.loop.call_soon_threadsafe(live.loop.stop)
    thread.join(timeout=60)


def server_config() -> ServeConfig:
    """The tests' server settings: ephemeral port, small batch, short default outputs."""
    return ServeConfig(port=0, max_batch_size=TEST_BATCH_SIZE, default_max_tokens=64)


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    live, thread = serve_in_thread(server_config())
    yield live
    stop_live_server(live, thread)


@dataclass(frozen=True, slots=True)
class SecureLiveServer:
    """The real model behind TLS, mTLS and bearer tokens (health open, as by default)."""

    address: str
    """``localhost:<port>``: the server certificate names localhost and 127.0.0.1."""
    server: TokenwireServer
    loop: asyncio.AbstractEventLoop
    pki: TestPki
    token_all: str
    """Every right."""
    token_model_only: str
    """Only ``model``: GetModelInfo and Tokenize, not Generate."""


def write_tokens_file(path: Path) -> Path:
    path.write_text(f"# test tokens\n{TOKEN_ALL} all\n{TOKEN_MODEL_ONLY} model\n")
    return path


@pytest.fixture(scope="session")
def secure_live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureLiveServer]:
    directory = tmp_path_factory.mktemp("secure-server")
    pki = make_test_pki(directory)
    config = replace(
        server_config(),
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_cert,
        auth_tokens_file=write_tokens_file(directory / "tokens"),
    )
    live, thread = serve_in_thread(config)
    port = live.address.rpartition(":")[2]
    yield SecureLiveServer(f"localhost:{port}", live.server, live.loop, pki, TOKEN_ALL, TOKEN_MODEL_ONLY)
    stop_live_server(live, thread)


@pytest.fixture(scope="session")
def busy_sim_server() -> Iterator[LiveServer]:
    """The simulation engine with one slot and no queue: while one generation runs, the next is
    refused with RESOURCE_EXHAUSTED and RetryInfo (the client examples' retry demonstration)."""
    config = ServeConfig(port=0, engine="sim", max_batch_size=1, max_waiting=0, sim_step_ms=5.0)
    live, thread = serve_in_thread(config)
    yield live
    stop_live_server(live, thread)


@pytest.fixture
async def channel(live_server: LiveServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(live_server.address) as opened:
        yield opened


@pytest.fixture
def generation(channel: aio.Channel) -> GenerationStub:
    return generation_pb2_grpc.GenerationServiceStub(channel)


@pytest.fixture
def model(channel: aio.Channel) -> ModelStub:
    return model_pb2_grpc.ModelServiceStub(channel)
