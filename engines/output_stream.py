"""The shape of every engine's per-request output stream.

A plain async generator would not do for ``Engine.generate``: ``aclose()`` on
one that was never iterated skips its ``finally``, and the request would run
on unseen, holding its slot. This base runs the engine's ``_close`` whenever
the stream is closed, finished or dropped, iterated or not.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

from engines.contract import EngineOutput


class ClosingOutputStream(AsyncGenerator[EngineOutput, None], abc.ABC):
    """Subclasses set their state, then call ``super().__init__()``."""

    def __init__(self) -> None:
        self._inner = self._outputs()

    @abc.abstractmethod
    def _outputs(self) -> AsyncGenerator[EngineOutput, None]:
        """The outputs; its ``finally`` should call ``_close`` too."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Idempotent: release the request, cancelling it in the engine unless it finished."""

    # The inner generator's own awaitables, handed out as they are: a coroutine of ours around
    # each would cost every output two more frames.
    def __anext__(self) -> Coroutine[Any, Any, EngineOutput]:
        """Next output."""
        return self._inner.__anext__()

    def asend(self, value: None) -> Coroutine[Any, Any, EngineOutput]:
        """Next output (as ``__anext__``)."""
        return self._inner.asend(value)

    def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> Coroutine[Any, Any, EngineOutput]:
        """Raise inside the stream (as for any async generator)."""
        return self._inner.athrow(typ, val, tb)

    async def aclose(self) -> None:
        """Stop reading; cancels the request if it has not finished."""
        try:
            await self._inner.aclose()
        finally:
            self._close()

    def __del__(self) -> None:
        # Dropped without being read to the end: the slot must not stay taken.
        self._close()
