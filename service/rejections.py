"""Logging what went wrong with a call, bounded whatever callers send.

Rejections (bad input, overload, duplicate ids, refused credentials) are the
caller's business: each is logged once at info with its reason, and at most
``BURST`` of one kind per ``WINDOW_S`` (the next one says how many were held
back). Failures of our own (anything that is not a ``ServiceError``) are
logged at error with their traceback and the request id bound to the call.
"""

from __future__ import annotations

import structlog

from engines.contract import EngineOverloaded
from service.errors import InvalidArgument, ServiceError, clip
from service.logs import RateLimiter
from service.metrics import MetricsSink

log = structlog.get_logger(__name__)

BURST = 10
WINDOW_S = 10.0
_limiter = RateLimiter(burst=BURST, window_s=WINDOW_S)


def rejected(error: ServiceError, *, rpc: str, metrics: MetricsSink) -> None:
    """Count a refused call, and log it at info, rate-limited per (rpc, reason)."""
    metrics.rejected(rpc, error.reason)
    held_back = _limiter.allow(f"{rpc}:{error.reason}")
    if held_back is None:
        return
    fields: dict[str, object] = {"rpc": rpc, "code": error.code.name, "reason": error.reason}
    if isinstance(error, InvalidArgument):
        fields["violations"] = error.total_violations
        fields["first_violation"] = error.violations[0].field if error.violations else ""
    else:
        fields["detail"] = clip(error.message, 200)
    if held_back:
        fields["held_back"] = held_back
    log.info("request_rejected", **fields)


def log_failure(error: BaseException, *, rpc: str, metrics: MetricsSink) -> None:
    """A call ended by ``error`` after it was accepted: a rejection, or a failure with its traceback."""
    if isinstance(error, ServiceError):
        rejected(error, rpc=rpc, metrics=metrics)
    elif isinstance(error, EngineOverloaded):
        metrics.rejected(rpc, "ENGINE_QUEUE_FULL")
        held_back = _limiter.allow(f"{rpc}:ENGINE_QUEUE_FULL")
        if held_back is not None:
            log.info("request_rejected", rpc=rpc, code="RESOURCE_EXHAUSTED", reason="ENGINE_QUEUE_FULL")
    else:
        log.error("generation_failed", error=clip(str(error), 200), exc_info=error)
