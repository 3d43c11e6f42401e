"""Which requests an engine holds, and the way a request enters and leaves it.

Every engine that batches on a worker thread of its own keeps the same books:
requests waiting for a place in the batch, oldest first, and requests active
in it; a bound on both together, past which ``submit`` is refused with an
estimate of when to retry; cancellation of a request wherever it is; and, when
the batch fails or the engine stops, an end for every request it holds.
``RequestTable`` keeps those books. It takes no lock: each engine calls it
under its own, because they lock differently (the native scheduler publishes
outside its lock, the simulation under it).

``open_stream`` is the other half every engine shares: the way
``Engine.generate`` registers a request's mailbox before submitting it, so
that no output can arrive before there is somewhere to put it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from engines.contract import (
    EngineError,
    EngineLoad,
    EngineOutput,
    EngineOverloaded,
    EngineRequest,
    FinishReason,
    FinishStats,
    RequestId,
)
from engines.delivery import MailboxStream, OutputRouter, Update


@dataclass(slots=True)
class Progress:
    """What an engine counts about one request for its ``FinishStats`` (mutable, worker-side)."""

    submitted_at: float
    started_at: float | None = None
    """When the request's first step (its prompt) began; None while it waits."""
    decode_steps: int = 0
    draft_tokens: int = 0
    accepted_draft_tokens: int = 0
    cached_prompt_tokens: int = 0
    """Prompt tokens whose keys and values came from a prefix cache instead of a forward pass."""

    def stats(self, now: float) -> FinishStats:
        """The stats of a request that ends at ``now``."""
        started = self.started_at if self.started_at is not None else now
        return FinishStats(
            queued_s=started - self.submitted_at,
            cached_prompt_tokens=self.cached_prompt_tokens,
            draft_tokens=self.draft_tokens,
            accepted_draft_tokens=self.accepted_draft_tokens,
            decode_steps=self.decode_steps,
        )


class Tracked(Protocol):
    """What the table needs of an engine's record of a request."""

    @property
    def request(self) -> EngineRequest: ...

    @property
    def progress(self) -> Progress: ...


T = TypeVar("T", bound=Tracked)


class RequestTable(Generic[T]):
    """Waiting and active requests of one engine. Not thread-safe: call it under the engine's lock."""

    def __init__(
        self, *, max_batch_size: int, max_waiting: int, on_release: Callable[[T], None] | None = None
    ) -> None:
        """``on_release``: called for every request that leaves the batch (finished, cancelled, failed)."""
        self._max_batch_size = max_batch_size
        self._max_waiting = max_waiting
        self._on_release = on_release
        self._waiting: deque[T] = deque()
        self._active: dict[RequestId, T] = {}
        self._closed = False
        self._service_s_ema: float | None = None

    @property
    def active(self) -> Mapping[RequestId, T]:
        """Requests in the batch."""
        return self._active

    @property
    def empty(self) -> bool:
        """True when no request waits or runs."""
        return not (self._waiting or self._active)

    @property
    def closed(self) -> bool:
        """True once ``close`` was called: the engine is stopping."""
        return self._closed

    def close(self) -> None:
        """Refuse every later ``enqueue``."""
        self._closed = True

    def load(self) -> EngineLoad:
        return EngineLoad(active_requests=len(self._active), waiting_requests=len(self._waiting))

    def enqueue(self, entry: T) -> None:
        """Queue ``entry`` for the batch; raises ``EngineOverloaded`` when the table is full."""
        if self._closed:
            raise EngineError("the engine is shutting down")
        if len(self._active) + len(self._waiting) >= self._max_batch_size + self._max_waiting:
            raise EngineOverloaded("too many requests waiting for the engine", self._retry_after_s())
        self._waiting.append(entry)

    def _retry_after_s(self) -> float:
        # Roughly: how long until the queue ahead has drained through the batch.
        per_request = self._service_s_ema if self._service_s_ema is not None else 1.0
        estimate = per_request * (len(self._waiting) + 1) / self._max_batch_size
        return min(max(estimate, 0.1), 60.0)

    def admit(
        self,
        now: float,
        may_generate: Callable[[T], bool],
        take_place: Callable[[T], bool] | None = None,
    ) -> tuple[list[T], list[Update]]:
        """Move waiting requests into the batch while it has room, oldest first.

        Returns the requests admitted, and the final outputs (``LENGTH``) of those that
        ``may_generate`` says can generate nothing: they end without taking a place.
        ``take_place`` reserves what else an entry needs (a KV-cache slot within a budget);
        when it cannot, the entry stays first in line and admission stops until a release.
        """
        admitted: list[T] = []
        ended: list[Update] = []
        while self._waiting and len(self._active) < self._max_batch_size:
            entry = self._waiting.popleft()
            request_id = entry.request.request_id
            if not may_generate(entry):
                output = EngineOutput(finish_reason=FinishReason.LENGTH, stats=entry.progress.stats(now))
                ended.append((request_id, output))
                continue
            if take_place is not None and not take_place(entry):
                self._waiting.appendleft(entry)
                break
            self._active[request_id] = entry
            admitted.append(entry)
        return admitted, ended

    def release(self, entry: T, now: float) -> None:
        """Take an active request out of the batch (it finished, or is being ended)."""
        del self._active[entry.request.request_id]
        if self._on_release is not None:
            self._on_release(entry)
        started = entry.progress.started_at
        if started is not None:
            elapsed = now - started
            ema = self._service_s_ema
            self._service_s_ema = elapsed if ema is None else 0.8 * ema + 0.2 * elapsed

    def cancel(self, request_id: RequestId, now: float) -> Update | None:
        """End ``request_id`` wherever it is; its ``CANCELLED`` output, or None for unknown ids."""
        entry = self._active.get(request_id)
        if entry is not None:
            self.release(entry, now)
        else:
            entry = next((e for e in self._waiting if e.request.request_id == request_id), None)
            if entry is None:
                return None
            self._waiting.remove(entry)
        return request_id, _cancelled(entry, now)

    def fail(self, entry: T, error: EngineError, now: float) -> Update | None:
        """End one active request with ``error``; None when it is no longer active."""
        if self._active.get(entry.request.request_id) is not entry:
            return None
        self.release(entry, now)
        return (entry.request.request_id, error)

    def fail_active(self, error: EngineError, now: float) -> list[Update]:
        """End every active request with ``error`` (a forward pass they shared failed)."""
        failed: list[Update] = []
        for entry in list(self._active.values()):
            self.release(entry, now)
            failed.append((entry.request.request_id, error))
        return failed

    def cancel_all(self, now: float) -> list[Update]:
        """End every request, active ones first, ``CANCELLED`` (the engine is stopping)."""
        ended: list[Update] = [
            (e.request.request_id, _cancelled(e, now)) for e in [*self._active.values(), *self._waiting]
        ]
        for entry in list(self._active.values()):
            self.release(entry, now)
        self._waiting.clear()
        return ended


def _cancelled(entry: Tracked, now: float) -> EngineOutput:
    return EngineOutput(finish_reason=FinishReason.CANCELLED, stats=entry.progress.stats(now))


def open_stream(
    router: OutputRouter,
    request: EngineRequest,
    submit: Callable[[EngineRequest], None],
    cancel: Callable[[RequestId], None],
) -> AsyncGenerator[EngineOutput, None]:
    """``Engine.generate`` on ``router``: register the mailbox, then ``submit`` (whose
    ``EngineOverloaded`` is raised here), and return the stream that ``cancel`` s on close.

    Must be called on the event loop that will iterate the stream.
    """
    if not request.prompt_token_ids:
        raise ValueError("the prompt must hold at least one token")
    mailbox = router.register(request.request_id)
    try:
        submit(request)
    except BaseException:
        router.forget(request.request_id, mailbox)
        raise
    return MailboxStream(router, request.request_id, mailbox, cancel)
