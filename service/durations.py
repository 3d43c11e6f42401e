"""The one way the service turns seconds into a ``google.protobuf.Duration``."""

from __future__ import annotations

from google.protobuf import duration_pb2

_NANOS_PER_SECOND = 1_000_000_000


def duration(seconds: float) -> duration_pb2.Duration:
    """``seconds`` (not negative: earlier clamps to 0) as a valid Duration, rounded to the nanosecond.

    Rounding happens on the whole count of nanoseconds, so 4.9999999999 s is 5 s and 0 ns, never
    4 s and 1,000,000,000 ns (an invalid Duration: nanos must be below one second).
    """
    whole, nanos = divmod(max(0, round(seconds * _NANOS_PER_SECOND)), _NANOS_PER_SECOND)
    return duration_pb2.Duration(seconds=whole, nanos=nanos)
