"""Noticing a stream whose reader has stopped reading.

A stream's writer hands gRPC one message at a time, and gRPC's send completes
only once HTTP/2 flow control admits the message: when a client stops reading,
the send in progress waits as soon as the client's receive window for the
stream is full (64 KiB to start with for gRPC's own clients; their BDP probe
may grow it). While it waits, the generation's later tokens merge in the
engine's mailbox, so a stalled stream holds one message in the transport and
one pending output per generation, never a queue of events. What it would
still hold is its engine slot, computing tokens nobody reads: ``StallWatch``
calls ``on_stall`` once a send has waited the stall timeout, and the caller
ends the generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_EARLY_S = 1e-3
"""A timer may fire this much before it is due; count it as due rather than re-arm at once."""


class StallWatch:
    """One stream's writer: ``sending`` before each message, ``sent`` when gRPC took it, ``close`` at the end.

    Costs two attribute writes per message; one timer per stream re-arms itself at most
    once per timeout. Must be created on the stream's event loop.
    """

    __slots__ = ("_fired", "_loop", "_on_stall", "_since", "_timeout_s", "_timer")

    def __init__(self, timeout_s: float | None, on_stall: Callable[[], None]) -> None:
        """``timeout_s``: None or 0 watches nothing. ``on_stall`` must not block; it runs once per stall."""
        self._timeout_s = timeout_s or None
        self._on_stall = on_stall
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None
        self._fired = False
        self._timer: asyncio.TimerHandle | None = None
        if self._timeout_s is not None:
            self._timer = self._loop.call_later(self._timeout_s, self._check)

    @property
    def stalled(self) -> bool:
        """True from a stall until the reader takes the message it was stuck on."""
        return self._fired

    def sending(self) -> None:
        """A message is being handed to gRPC."""
        self._since = self._loop.time()

    def sent(self) -> None:
        """gRPC took it: the reader is reading again (or its window had room)."""
        self._since = None
        self._fired = False

    def close(self) -> None:
        """The stream is over: stop watching."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        timeout = self._timeout_s
        assert timeout is not None
        now = self._loop.time()
        since = self._since
        due = now + timeout
        stalled = since is not None and not self._fired and now >= since + timeout - _EARLY_S
        if since is not None and not self._fired and not stalled:
            due = since + timeout
        self._timer = self._loop.call_at(due, self._check)
        if stalled:
            self._fired = True
            self._on_stall()
