"""The shape of every engine's per-request output stream.

A plain async generator would not do for ``Engine.generate``: ``aclose()`` on
one that was never iterated skips its ``finally``, and the request would run
on unseen, holding its slot. This base runs the engine's ``_close`` whenever
the stream is closed, finished or dropped, iterated or not.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
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

    async def asend(self, value: None) -> EngineOutput:
        """Next output (``__anext__`` calls this)."""
        return await self._inner.asend(value)

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> EngineOutput:
        """Raise inside the stream (as for any async generator)."""
        return await self._inner.athrow(typ, val, tb)

    async def aclose(self) -> None:
        """Stop reading; cancels the request if it has not finished."""
        try:
            await self._inner.aclose()
        finally:
            self._close()

    def __del__(self) -> None:
        # Dropped without being read to the end: the slot must not stay taken.
        self._close()
