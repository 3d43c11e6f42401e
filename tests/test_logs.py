"""Log configuration: JSON lines carry tracebacks; the rate limiter bounds what callers can trigger."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from service.logs import RateLimiter, configure


def test_json_logs_carry_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    try:
        log = structlog.get_logger("tests.logs")
        try:
            raise ZeroDivisionError("boom")
        except ZeroDivisionError:
            log.exception("step_failed", request_id="r-1")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        logging.getLogger().handlers.clear()
    assert line["event"] == "step_failed"
    assert line["request_id"] == "r-1"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "ZeroDivisionError: boom" in line["exception"]


def test_rate_limiter_lets_a_burst_through_then_counts_what_it_held_back() -> None:
    limiter = RateLimiter(burst=3, window_s=10.0)
    assert [limiter.allow("rejected", now=0.0) for _ in range(3)] == [0, 0, 0]
    assert [limiter.allow("rejected", now=1.0) for _ in range(5)] == [None] * 5
    assert limiter.allow("other", now=1.0) == 0  # keys are limited separately
    assert limiter.allow("rejected", now=10.0) == 5  # a new window reports the 5 held back


def test_rate_limiter_keeps_a_bounded_number_of_keys() -> None:
    limiter = RateLimiter(burst=1, window_s=10.0, max_keys=4)
    for key in range(100):
        assert limiter.allow(f"k{key}", now=0.0) == 0
    assert len(limiter._windows) <= 4
