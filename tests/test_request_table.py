"""engines/request_table.py: the books every batching engine keeps, on their own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engines.contract import (
    EngineError,
    EngineOutput,
    EngineOverloaded,
    EngineRequest,
    FinishReason,
    RequestId,
    SamplingParams,
    StoppingParams,
    TokenId,
)
from engines.request_table import Progress, RequestTable


@dataclass(slots=True)
class _Entry:
    request: EngineRequest
    progress: Progress


def _entry(name: str, submitted_at: float = 0.0) -> _Entry:
    request = EngineRequest(
        request_id=RequestId(name),
        prompt_token_ids=(TokenId(1),),
        sampling=SamplingParams(),
        stopping=StoppingParams(max_tokens=4),
    )
    return _Entry(request, Progress(submitted_at=submitted_at))


def _reasons(updates: list[tuple[RequestId, EngineOutput | EngineError]]) -> list[tuple[str, object]]:
    return [(i, u.finish_reason if isinstance(u, EngineOutput) else type(u).__name__) for i, u in updates]


def test_admission_is_oldest_first_and_bounded_by_the_batch() -> None:
    released: list[str] = []
    table: RequestTable[_Entry] = RequestTable(
        max_batch_size=2, max_waiting=2, on_release=lambda e: released.append(e.request.request_id)
    )
    for name in ("a", "empty", "b", "c"):
        table.enqueue(_entry(name))
    with pytest.raises(EngineOverloaded) as overloaded:
        table.enqueue(_entry("d"))
    assert 0.1 <= overloaded.value.retry_after_s <= 60.0
    admitted, ended = table.admit(1.0, lambda e: e.request.request_id != "empty")
    # A request that may generate nothing ends LENGTH without taking a place in the batch.
    assert [e.request.request_id for e in admitted] == ["a", "b"]
    assert _reasons(ended) == [("empty", FinishReason.LENGTH)]
    assert table.load().active_requests == 2 and table.load().waiting_requests == 1
    table.release(admitted[0], 2.0)
    assert released == ["a"]
    admitted, _ = table.admit(2.0, lambda e: True)
    assert [e.request.request_id for e in admitted] == ["c"]


def test_cancel_finds_a_request_wherever_it_is() -> None:
    released: list[str] = []
    table: RequestTable[_Entry] = RequestTable(
        max_batch_size=1, max_waiting=4, on_release=lambda e: released.append(e.request.request_id)
    )
    table.enqueue(_entry("active"))
    table.enqueue(_entry("waiting"))
    table.admit(0.0, lambda e: True)
    assert table.cancel(RequestId("unknown"), 1.0) is None
    update = table.cancel(RequestId("waiting"), 1.5)
    assert update is not None and _reasons([update]) == [("waiting", FinishReason.CANCELLED)]
    assert isinstance(update[1], EngineOutput) and update[1].stats is not None
    assert update[1].stats.queued_s == 1.5  # it never started
    update = table.cancel(RequestId("active"), 2.0)
    assert update is not None and released == ["active"] and table.empty


def test_failing_and_stopping_end_every_request() -> None:
    table: RequestTable[_Entry] = RequestTable(max_batch_size=1, max_waiting=4)
    for name in ("a", "b", "c"):
        table.enqueue(_entry(name))
    table.admit(0.0, lambda e: True)
    assert _reasons(table.fail_active(EngineError("boom"), 1.0)) == [("a", "EngineError")]
    table.admit(1.0, lambda e: True)
    assert _reasons(table.cancel_all(2.0)) == [("b", FinishReason.CANCELLED), ("c", FinishReason.CANCELLED)]
    assert table.empty
    table.close()
    with pytest.raises(EngineError, match="shutting down"):
        table.enqueue(_entry("late"))
