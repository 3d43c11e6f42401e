"""Generations in flight on this server, by request id.

Request ids are global to the server so that Abort works from any connection
and a duplicate id is refused wherever the first one runs. Cancelling through
the registry records *why* (Abort, Session cancel, the request's timeout, a
stalled reader, shutdown) and asks the engine to stop; the generation's own
stream then reports the reason once the engine has freed the slot.

The drain waits on the registry: it is empty once every generation accepted
before the drain has reported its end, and ``close`` cancels whatever is
left when the grace period is over.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.contract import RequestId
from service.errors import AlreadyExists, Unavailable


class CancelCause(enum.Enum):
    CANCELLED = "cancelled"
    """Abort, Session cancel or shutdown."""
    DEADLINE = "deadline"
    """The request's own ``timeout`` passed."""
    STOP_STRING = "stop_string"
    """A stop string matched above the engine; the engine must stop producing."""
    STALLED = "stalled"
    """The stream's reader took nothing for the stall timeout while output was pending."""


@dataclass(slots=True)
class Ticket:
    """A registered generation. Mutable: its cancellation cause is set once."""

    request_id: RequestId
    _cancel_engine: Callable[[RequestId], None]
    cause: CancelCause | None = field(default=None)
    sample_ids: tuple[RequestId, ...] = ()
    """The engine ids of its further samples (GenerateRequest.n > 1), cancelled with it."""

    def cancel(self, cause: CancelCause) -> bool:
        """Ask the engine to stop this request; the first cause wins. True if this call cancelled it."""
        if self.cause is not None:
            return False
        self.cause = cause
        self._cancel_engine(self.request_id)
        for sample_id in self.sample_ids:
            self._cancel_engine(sample_id)
        return True


class RequestRegistry:
    """Owned by the event loop's thread; not thread-safe by design."""

    def __init__(self, cancel_engine: Callable[[RequestId], None]) -> None:
        self._cancel_engine = cancel_engine
        self._tickets: dict[RequestId, Ticket] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self._closed: Unavailable | None = None

    @staticmethod
    def new_id() -> RequestId:
        return RequestId(uuid.uuid4().hex)

    def register(self, request_id: RequestId, sample_ids: tuple[RequestId, ...] = ()) -> Ticket:
        """Claim ``request_id`` (with the engine ids of its further samples); raises ``AlreadyExists``
        if it is in flight, ``Unavailable`` once closed."""
        if self._closed is not None:
            raise self._closed
        if request_id in self._tickets:
            raise AlreadyExists(f"request_id {request_id!r} is already in flight")
        ticket = Ticket(request_id, self._cancel_engine, sample_ids=sample_ids)
        self._tickets[request_id] = ticket
        self._empty.clear()
        return ticket

    def release(self, ticket: Ticket) -> None:
        """Forget ``ticket`` (idempotent; a later generation reusing its id keeps its own)."""
        if self._tickets.get(ticket.request_id) is ticket:
            del self._tickets[ticket.request_id]
            if not self._tickets:
                self._empty.set()

    def cancel(self, request_id: str, cause: CancelCause = CancelCause.CANCELLED) -> bool:
        """Cancel ``request_id`` if in flight; True if this call cancelled it."""
        ticket = self._tickets.get(RequestId(request_id))
        return ticket is not None and ticket.cancel(cause)

    def stall(self, ticket: Ticket) -> bool:
        """End ``ticket`` because its reader stalled: cancel it in the engine and free its id at once.

        Its stream then only waits for the reader to take what is pending and hear why it
        ended, which may be never; that wait holds no engine slot, no id and no drain.
        True if this call ended it.
        """
        if not ticket.cancel(CancelCause.STALLED):
            return False
        self.release(ticket)
        return True

    def close(self, refusal: Unavailable) -> None:
        """Cancel every generation (the drain's grace period is over); refuse later ones with ``refusal``."""
        self._closed = refusal
        for ticket in list(self._tickets.values()):
            ticket.cancel(CancelCause.CANCELLED)

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for no generation to be in flight; True if none is."""
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._tickets)
