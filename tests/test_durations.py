"""Seconds to google.protobuf.Duration: one helper, valid at the edges."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2

from service.durations import duration
from service.errors import ResourceExhausted, to_rpc_status


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, (0, 0)),
        (0.5, (0, 500_000_000)),
        (1e-10, (0, 0)),
        (4.9999999999, (5, 0)),  # rounds up into the next second, never nanos = 1e9
        (2.0000000004, (2, 0)),
        (1.999999999, (1, 999_999_999)),
        (123456.25, (123456, 250_000_000)),
        (-0.3, (0, 0)),  # a clock step backwards reads as no time, not an invalid negative Duration
    ],
)
def test_duration_is_valid_and_rounded_to_the_nanosecond(seconds: float, expected: tuple[int, int]) -> None:
    value = duration(seconds)
    assert (value.seconds, value.nanos) == expected
    assert 0 <= value.nanos <= 999_999_999


def test_a_retry_delay_just_under_a_whole_second_is_a_valid_duration() -> None:
    status = to_rpc_status(ResourceExhausted("busy", 4.9999999999))
    retry = error_details_pb2.RetryInfo()
    assert sum(1 for detail in status.details if detail.Unpack(retry)) == 1
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (5, 0)
