"""structlog, configured once at start-up: JSON lines unless stderr is a terminal."""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal

import structlog

from service.tracing import add_trace_ids

LogFormat = Literal["auto", "json", "console"]


def configure(log_format: LogFormat = "auto", level: str = "info") -> None:
    """Route structlog and the stdlib ``logging`` (grpc, engines) through one renderer to stderr."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Below the level, an event is dropped before any processor runs (not after all of them).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # JSON lines carry the traceback as text ("exception"); the console renderer prints its own.
            *([structlog.processors.format_exc_info] if use_json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class RateLimiter:
    """At most ``burst`` events per ``window_s`` for each key; counts what it held back.

    For logs a caller can trigger at will (rejected requests, failed logins): each
    kind of event is logged at most ``burst`` times a window, and the first one
    let through after a quiet spell says how many were held back meanwhile.
    Owned by one thread (the event loop).
    """

    def __init__(self, burst: int = 10, window_s: float = 10.0, max_keys: int = 1024) -> None:
        self._burst = burst
        self._window_s = window_s
        self._max_keys = max_keys
        self._windows: dict[str, tuple[float, int, int]] = {}
        """key -> (window start, events let through in it, events held back since the last let through)."""

    def allow(self, key: str, now: float | None = None) -> int | None:
        """None to hold this event back; else how many of ``key`` were held back before it."""
        now = time.monotonic() if now is None else now
        start, passed, held = self._windows.get(key, (now, 0, 0))
        if now - start >= self._window_s:
            start, passed = now, 0
        if passed >= self._burst:
            self._windows[key] = (start, passed, held + 1)
            return None
        if key not in self._windows and len(self._windows) >= self._max_keys:
            self._windows.clear()  # bounded: forget old keys rather than grow
        self._windows[key] = (start, passed + 1, 0)
        return held
