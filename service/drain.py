"""The graceful drain: what a stopping server does before it closes its port.

1. Stop taking work, with the port still open: health turns NOT_SERVING and
   every new generation, Session and model call is refused UNAVAILABLE with
   google.rpc.RetryInfo, so clients and balancers retry elsewhere instead of
   meeting a refused connection or a reset stream.
2. Generations in flight run on, for up to the grace period.
3. When it is over, those still running are cancelled in the engine; each still
   sends its ``finished`` event (FINISH_REASON_CANCELLED, with its usage) and
   its call ends OK.
4. Sessions end OK once their generations have reported.

Only then does the server stop gRPC (a short grace for the last messages to
flush) and the engine. A stream whose reader has stopped reading may still be
waiting to send when the server stops; gRPC cancels it then.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import structlog

from service.errors import Unavailable
from service.registry import RequestRegistry

log = structlog.get_logger(__name__)


class OpenStreams:
    """Generate and Session calls in progress, and the signal that ends Sessions when a drain is over.

    Owned by the event loop's thread.
    """

    def __init__(self) -> None:
        self._open = 0
        self._none_open = asyncio.Event()
        self._none_open.set()
        self.closing = asyncio.Event()
        """Set when the drain is over: each Session ends OK once its own generations have reported."""

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count one call for as long as the block runs."""
        self._open += 1
        self._none_open.clear()
        try:
            yield
        finally:
            self._open -= 1
            if self._open == 0:
                self._none_open.set()

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every tracked call to end; True if they all did."""
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await self._none_open.wait()
        except TimeoutError:
            return False
        return True

    def __len__(self) -> int:
        return self._open


async def drain(
    registry: RequestRegistry,
    streams: OpenStreams,
    *,
    grace_s: float,
    flush_s: float,
    refusal: Unavailable,
) -> None:
    """Steps 2 to 4 above; the caller has already turned health NOT_SERVING and refuses new work.

    ``flush_s``: how long streams get, after the grace period, to send their last events.
    ``refusal``: what a generation that tries to start after the grace period gets.
    """
    if not await registry.wait_empty(grace_s):
        log.info("drain_grace_over", cancelled=len(registry))
        registry.close(refusal)
    streams.closing.set()
    if not await streams.wait_closed(flush_s):
        log.warning("drain_streams_left", streams=len(streams))
