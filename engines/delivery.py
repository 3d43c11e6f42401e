"""Handing outputs from an engine's worker thread to the asyncio tasks that read them.

An engine steps its batch on a thread of its own; each request is read by a
task on some event loop. ``OutputRouter.publish`` takes one step's outputs for
the whole batch and schedules one callback per event loop (not one per
request), which drops them into per-request ``Mailbox`` es. A mailbox
coalesces whatever its reader has not taken yet, so a slow reader costs memory
bounded by its request's tokens, never by the number of steps.
``MailboxStream`` is the ``Engine.generate`` stream over one mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

import structlog

from engines.contract import EngineError, EngineOutput, RequestId, TokenId, TokenLogprob
from engines.output_stream import ClosingOutputStream

_log = structlog.get_logger(__name__)

Update: TypeAlias = tuple[RequestId, EngineOutput | EngineError]
"""One request's output of a step, or the error that ended it."""

_Delivery: TypeAlias = tuple["Mailbox", EngineOutput | EngineError]


@dataclass(frozen=True, slots=True)
class Coalescing:
    """When a reader is handed its pending tokens: at ``min_tokens`` pending, once the oldest
    has waited ``max_delay_s``, or at the request's end, whichever comes first.

    The default hands every output over at once (lowest latency). Holding tokens back trades
    a bounded delay for fewer, bigger events: each event costs the front door the same CPU
    whatever its size, so at hundreds of streams this is what keeps the process under a core.
    """

    min_tokens: int = 1
    max_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.min_tokens < 1 or self.max_delay_s < 0:
            raise ValueError(f"coalescing needs min_tokens >= 1 and max_delay_s >= 0; got {self}")

    @property
    def holds(self) -> bool:
        return self.min_tokens > 1 and self.max_delay_s > 0


IMMEDIATE = Coalescing()
"""Every output handed over as soon as it arrives (what is pending still merges)."""


class Mailbox:
    """One request's outputs not yet read, merged into one. Touched only on its reader's loop."""

    __slots__ = (
        "_delay_s",
        "_error",
        "_final",
        "_hold",
        "_logprobs",
        "_ready",
        "_timer",
        "_token_ids",
        "_waiter",
    )

    def __init__(self, coalescing: Coalescing = IMMEDIATE) -> None:
        self._token_ids: list[TokenId] = []
        self._logprobs: list[TokenLogprob] = []
        self._final: EngineOutput | None = None
        self._error: EngineError | None = None
        # An asyncio.Event, pared down: the one reader's future, made only when it has to wait.
        self._ready = False
        self._waiter: asyncio.Future[None] | None = None
        # put runs for every request at every engine step: the policy is read once, here.
        self._hold = coalescing.min_tokens if coalescing.holds else 0
        self._delay_s = coalescing.max_delay_s
        self._timer: asyncio.TimerHandle | None = None

    def put(self, update: EngineOutput | EngineError) -> None:
        """Add an output (its tokens join those still pending) or the error that ends the request."""
        if isinstance(update, EngineError):
            self._error = update
            self._wake()
            return
        self._token_ids.extend(update.token_ids)
        if update.logprobs:
            self._logprobs.extend(update.logprobs)
        if update.finish_reason is not None:
            self._final = update
        if not self._hold or self._final is not None or len(self._token_ids) >= self._hold:
            self._wake()
        elif self._timer is None and self._token_ids and self._error is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._wake)

    def fail(self, error: EngineError) -> None:
        """End the request with ``error`` whatever state the mailbox is in (cannot raise)."""
        self._error = error
        self._wake()

    def _wake(self) -> None:
        self._ready = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Return once something was put since the last ``wait`` returned."""
        if not self._ready:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        self._ready = False

    def take(self) -> EngineOutput | None:
        """Everything pending as one output, or None when nothing is; raises the request's error."""
        if self._error is not None:
            raise self._error
        final = self._final
        if not self._token_ids and final is None:
            return None
        logprobs = tuple(self._logprobs) if self._logprobs else ()
        if final is None:
            output = EngineOutput(tuple(self._token_ids), logprobs)
        else:
            output = EngineOutput(
                tuple(self._token_ids), logprobs, final.finish_reason, final.stop_token_id, final.stats
            )
        self._token_ids, self._logprobs, self._final = [], [], None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return output


class OutputRouter:
    """Which loop and mailbox each request in flight is read from; thread-safe."""

    def __init__(self, coalescing: Coalescing = IMMEDIATE) -> None:
        self._coalescing = coalescing
        self._routes: dict[RequestId, tuple[asyncio.AbstractEventLoop, Mailbox]] = {}
        # Reentrant: a dropped stream's __del__ (``forget``) may run on whichever thread the
        # cyclic GC happens to run on, including one inside ``publish``.
        self._lock = threading.RLock()

    def register(self, request_id: RequestId) -> Mailbox:
        """A new mailbox for ``request_id``, read on the running loop.

        Raises ``EngineError`` when the id is already in flight.
        """
        loop = asyncio.get_running_loop()
        mailbox = Mailbox(self._coalescing)
        with self._lock:
            if request_id in self._routes:
                raise EngineError(f"request id {request_id!r} is already in flight")
            self._routes[request_id] = (loop, mailbox)
        return mailbox

    def forget(self, request_id: RequestId, mailbox: Mailbox) -> None:
        """Stop delivering to ``mailbox`` (a later request reusing the id keeps its own route)."""
        with self._lock:
            route = self._routes.get(request_id)
            if route is not None and route[1] is mailbox:
                del self._routes[request_id]

    def publish(self, updates: Iterable[Update]) -> None:
        """Deliver one step's updates, from any thread: one callback per event loop. Never blocks long.

        Updates for ids no longer routed (their reader left) are dropped.
        """
        per_loop: defaultdict[asyncio.AbstractEventLoop, list[_Delivery]] = defaultdict(list)
        with self._lock:
            for request_id, update in updates:
                route = self._routes.get(request_id)
                if route is not None:
                    per_loop[route[0]].append((route[1], update))
        for loop, deliveries in per_loop.items():
            # RuntimeError: that loop is closed, so nobody is left to read these.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, deliveries)


def _deliver(deliveries: list[_Delivery]) -> None:
    for mailbox, update in deliveries:
        try:
            mailbox.put(update)
        except Exception as error:
            # One reader's failure must not cost the others on this loop their outputs.
            _log.exception("delivery_failed")
            mailbox.fail(EngineError(f"delivery failed: {type(error).__name__}"))


class MailboxStream(ClosingOutputStream):
    """One request's outputs from its mailbox. Closing or dropping it unfinished calls ``cancel``."""

    def __init__(
        self,
        router: OutputRouter,
        request_id: RequestId,
        mailbox: Mailbox,
        cancel: Callable[[RequestId], None],
    ) -> None:
        """``cancel``: the engine's ``cancel``; it must not block."""
        self._router = router
        self._request_id = request_id
        self._mailbox = mailbox
        self._cancel = cancel
        self._ended = False
        super().__init__()

    async def _outputs(self) -> AsyncGenerator[EngineOutput, None]:
        try:
            while True:
                await self._mailbox.wait()
                try:
                    output = self._mailbox.take()
                except EngineError:
                    self._ended = True  # the engine already dropped the request
                    raise
                if output is None:
                    continue
                if output.finish_reason is not None:
                    self._ended = True
                    self._close()  # let the id be reused before the caller reports the end
                    yield output
                    return
                yield output
        finally:
            self._close()

    def _close(self) -> None:
        """Idempotent: stop the deliveries and, unless the request ended, cancel it."""
        self._router.forget(self._request_id, self._mailbox)
        if not self._ended:
            self._ended = True
            self._cancel(self._request_id)
