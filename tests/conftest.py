"""A real tokenwire server on 127.0.0.1 (ephemeral port) with the real embedded model.

The server runs on its own thread and event loop, as it would in its own
process: tests talk to it only through gRPC, each on pytest's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2_grpc, model_pb2_grpc

from service.config import ServeConfig
from service.engine_choice import build_engine
from service.server import TokenwireServer
from tests.stubs import GenerationStub, ModelStub

TEST_BATCH_SIZE = 4


@dataclass(frozen=True, slots=True)
class LiveServer:
    address: str
    server: TokenwireServer
    loop: asyncio.AbstractEventLoop


def serve_in_thread(config: ServeConfig, *, wait_ready: bool = True) -> tuple[LiveServer, threading.Thread]:
    """Start a server on its own thread and loop; returns once it listens (and, by default, serves)."""
    started: concurrent.futures.Future[LiveServer] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()

    async def boot() -> None:
        server = TokenwireServer(config, build_engine(config))
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
