"""A ``tokenwire serve`` subprocess for benchmarks: free port, SERVING wait, RSS, and cleanup on any exit.

Every server started here is stopped when its ``async with`` block ends, when the
benchmark dies of an exception, Ctrl-C or SIGTERM (see ``stop_on_signals``), and,
on Linux, even when the benchmark is killed outright: the child asks the kernel
for SIGTERM when its parent dies.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


def tokenwire_command() -> list[str]:
    """The ``tokenwire`` console script of the environment running this benchmark."""
    script = Path(sys.executable).parent / "tokenwire"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def serve_flags() -> str:
    """``tokenwire serve --help``: lets a benchmark see which flags this checkout's server has."""
    done = subprocess.run(
        [*tokenwire_command(), "serve", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def die_with_parent() -> None:
    """``preexec_fn`` for children: SIGTERM them when the benchmark process dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the try/finally cleanup still applies


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so ``finally`` blocks stop the servers."""

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Memory:
    """From /proc/<pid>/status, in MiB."""

    rss_mib: float
    peak_rss_mib: float
    """VmHWM: the most resident memory the process has had."""


def memory(pid: int) -> Memory:
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return Memory(fields["VmRSS"], fields["VmHWM"])


@dataclass(frozen=True, slots=True)
class Server:
    address: str
    process: asyncio.subprocess.Process
    start_s: float
    """From launching the process to health SERVING."""
    channel: aio.Channel

    def memory(self) -> Memory:
        return memory(self.process.pid)


async def _wait_serving(channel: aio.Channel, process: asyncio.subprocess.Process, timeout_s: float) -> None:
    # Typed by hand: the typeshed stub of grpc_health's HealthStub declares no methods.
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"tokenwire serve exited with {process.returncode} before SERVING")
        try:
            reply = await check(health_pb2.HealthCheckRequest(), timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"tokenwire serve did not become SERVING within {timeout_s:.0f} s")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=20)
    except TimeoutError:
        process.kill()
        await process.wait()


@asynccontextmanager
async def serving(
    flags: tuple[str, ...], *, timeout_s: float = 300.0, checkout: Path | None = None
) -> AsyncIterator[Server]:
    """Run ``tokenwire serve <flags>`` on a free 127.0.0.1 port until the block ends.

    ``checkout``: serve another checkout of tokenwire (e.g. an older commit, to compare)
    with this environment's packages; None: this one.
    """
    port = free_port()
    address = f"127.0.0.1:{port}"
    program, cwd, env = tokenwire_command(), ROOT, None
    if checkout is not None:
        program, cwd = [sys.executable, "-m", "service.cli"], checkout
        env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout / 'clients/python/src'}"}
    command = [*program, "serve", "--host", "127.0.0.1", "--port", str(port), *flags]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        async with aio.insecure_channel(address) as channel:
            await _wait_serving(channel, process, timeout_s)
            yield Server(address, process, time.perf_counter() - started, channel)
    finally:
        await _stop(process)
