"""CPU-heavy request work (rendering chat templates, tokenizing, detokenizing) off the event loop.

Small inputs are prepared inline: a thread hop would cost more than the work.
Larger ones go to one worker thread, so however many arrive at once they take
at most one core from the loop and the engine, and at most ``max_pending`` of
them may wait for it (beyond that: RESOURCE_EXHAUSTED with a retry delay).
Size limits are checked before this runs (``service.validation``), so one job
is bounded too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from service.errors import ResourceExhausted

P = ParamSpec("P")
R = TypeVar("R")

INLINE_BYTES = 8 * 1024
"""Inputs up to this many bytes of text are prepared on the loop (well under a millisecond)."""


class PrepareQueueFull(ResourceExhausted):
    reason = "PREPARE_QUEUE_FULL"


Refusal = Callable[[int, float], ResourceExhausted]
"""The error a full queue answers with, given the jobs pending and the retry delay."""


def _prepare_queue_full(pending: int, retry_after_s: float) -> ResourceExhausted:
    return PrepareQueueFull(f"{pending} large inputs are being prepared; retry shortly", retry_after_s)


class Offload:
    """One worker thread with a bounded queue. Also used for compiling structured-output formats
    (``service.structured``), with its own thread and refusal."""

    def __init__(
        self,
        max_pending: int = 16,
        retry_after_s: float = 1.0,
        *,
        thread_name: str = "tokenwire-prepare",
        refusal: Refusal = _prepare_queue_full,
    ) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._max_pending = max_pending
        self._retry_after_s = retry_after_s
        self._refusal = refusal
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, weight: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)``: inline when ``weight`` (bytes of input) is small, else on the worker.

        A job counts as pending until it ends, even when its caller stops waiting for it.
        """
        if weight <= INLINE_BYTES:
            return fn(*args, **kwargs)
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[R]:
        """Queue ``fn(*args, **kwargs)`` on the worker; raises the refusal when ``max_pending`` wait.

        The job counts as pending until it ends, whoever still waits for it.
        """
        with self._lock:
            if self._pending >= self._max_pending:
                raise self._refusal(self._pending, self._retry_after_s)
            self._pending += 1

        def job() -> R:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._pending -= 1

        try:
            return self._executor.submit(job)
        except RuntimeError:  # shut down
            with self._lock:
                self._pending -= 1
            raise

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
