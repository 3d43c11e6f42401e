"""A real tokenwire server on 127.0.0.1 (ephemeral port), on its own thread and event loop.

It runs as it would in its own process: tests talk to it only through gRPC,
each on pytest's loop. The one start-up for every test server: tests/conftest.py's
fixtures and the modules that need a server of their own (the TensorRT-LLM
adapter's, with an engine built around its test double).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from engines.contract import Engine
from service.config import ServeConfig
from service.engine_choice import build_engine
from service.server import TokenwireServer
from service.tracing import Tracing

START_TIMEOUT_S = 300
"""Loading the real model on a loaded machine takes a while; a server that does not start fails."""


@dataclass(frozen=True, slots=True)
class LiveServer:
    address: str
    server: TokenwireServer
    loop: asyncio.AbstractEventLoop


def serve_in_thread(
    config: ServeConfig,
    *,
    engine: Engine | None = None,
    wait_ready: bool = True,
    tracing: Tracing | None = None,
) -> tuple[LiveServer, threading.Thread]:
    """Start a server on its own thread and loop; returns once it listens (and, by default, serves).

    ``engine``: the engine to serve, not started yet (default: built from ``config``, on the
    server's loop). ``tracing``: where the server's spans go (default: as ``config`` says).
    A failure to start is raised here.
    """
    started: concurrent.futures.Future[LiveServer] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()

    async def boot() -> None:
        server = TokenwireServer(
            config, engine if engine is not None else build_engine(config), tracing=tracing
        )
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
    return started.result(timeout=START_TIMEOUT_S), thread


def stop_live_server(live: LiveServer, thread: threading.Thread) -> None:
    asyncio.run_coroutine_threadsafe(live.server.stop(0), live.loop).result(timeout=60)
    live.loop.call_soon_threadsafe(live.loop.stop)
    thread.join(timeout=60)


@contextlib.contextmanager
def live_server_running(config: ServeConfig, *, engine: Engine | None = None) -> Iterator[LiveServer]:
    """``serve_in_thread`` for the duration of a ``with`` block, stopped however the block ends."""
    live, thread = serve_in_thread(config, engine=engine)
    try:
        yield live
    finally:
        stop_live_server(live, thread)
