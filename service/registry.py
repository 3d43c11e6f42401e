"""Generations in flight on this server, by request id.

Request ids are global to the server so that Abort works from any connection
and a duplicate id is refused wherever the first one runs. Cancelling through
the registry records *why* (Abort, Session cancel, the request's timeout) and
asks the engine to stop; the generation's own stream then reports the reason
in its final event once the engine has freed the slot.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.contract import RequestId
from service.errors import AlreadyExists


class CancelCause(enum.Enum):
    CANCELLED = "cancelled"
    """Abort, Session cancel or shutdown."""
    DEADLINE = "deadline"
    """The request's own ``timeout`` passed."""
    STOP_STRING = "stop_string"
    """A stop string matched above the engine; the engine must stop producing."""


@dataclass(slots=True)
class Ticket:
    """A registered generation. Mutable: its cancellation cause is set once."""

    request_id: RequestId
    _cancel_engine: Callable[[RequestId], None]
    cause: CancelCause | None = field(default=None)

    def cancel(self, cause: CancelCause) -> bool:
        """Ask the engine to stop this request; the first cause wins. True if this call cancelled it."""
        if self.cause is not None:
            return False
        self.cause = cause
        self._cancel_engine(self.request_id)
        return True


class RequestRegistry:
    """Owned by the event loop's thread; not thread-safe by design."""

    def __init__(self, cancel_engine: Callable[[RequestId], None]) -> None:
        self._cancel_engine = cancel_engine
        self._tickets: dict[RequestId, Ticket] = {}

    @staticmethod
    def new_id() -> RequestId:
        return RequestId(uuid.uuid4().hex)

    def register(self, request_id: RequestId) -> Ticket:
        """Claim ``request_id``; raises ``AlreadyExists`` if it is in flight."""
        if request_id in self._tickets:
            raise AlreadyExists(f"request_id {request_id!r} is already in flight")
        ticket = Ticket(request_id, self._cancel_engine)
        self._tickets[request_id] = ticket
        return ticket

    def release(self, ticket: Ticket) -> None:
        if self._tickets.get(ticket.request_id) is ticket:
            del self._tickets[ticket.request_id]

    def cancel(self, request_id: str, cause: CancelCause = CancelCause.CANCELLED) -> bool:
        """Cancel ``request_id`` if in flight; True if this call cancelled it."""
        ticket = self._tickets.get(RequestId(request_id))
        return ticket is not None and ticket.cancel(cause)

    def cancel_all(self) -> None:
        for ticket in list(self._tickets.values()):
            ticket.cancel(CancelCause.CANCELLED)

    def __len__(self) -> int:
        return len(self._tickets)
