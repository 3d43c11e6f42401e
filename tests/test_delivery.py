"""engines/delivery.py: a stream's pending tokens merge, and with coalescing are held back until
enough are pending, a time budget has passed, or the request ends."""

from __future__ import annotations

import asyncio

import pytest

from engines.contract import EngineError, EngineOutput, FinishReason, RequestId, TokenId
from engines.delivery import IMMEDIATE, Coalescing, Mailbox, OutputRouter


def _tokens(*ids: int) -> EngineOutput:
    return EngineOutput(token_ids=tuple(TokenId(i) for i in ids))


async def _ready_within(mailbox: Mailbox, seconds: float) -> bool:
    try:
        await asyncio.wait_for(mailbox.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def test_immediate_hands_over_at_once_and_merges_what_is_pending() -> None:
    mailbox = Mailbox(IMMEDIATE)
    mailbox.put(_tokens(1))
    mailbox.put(_tokens(2, 3))
    assert await _ready_within(mailbox, 1.0)
    output = mailbox.take()
    assert output is not None and output.token_ids == (1, 2, 3)
    assert mailbox.take() is None


async def test_coalescing_waits_for_enough_tokens() -> None:
    mailbox = Mailbox(Coalescing(min_tokens=4, max_delay_s=60.0))
    mailbox.put(_tokens(1, 2))
    assert not await _ready_within(mailbox, 0.05)
    mailbox.put(_tokens(3, 4))
    assert await _ready_within(mailbox, 1.0)
    output = mailbox.take()
    assert output is not None and output.token_ids == (1, 2, 3, 4)


async def test_coalescing_hands_over_after_the_time_budget() -> None:
    mailbox = Mailbox(Coalescing(min_tokens=100, max_delay_s=0.02))
    mailbox.put(_tokens(7))
    assert await _ready_within(mailbox, 2.0)
    output = mailbox.take()
    assert output is not None and output.token_ids == (7,)
    # The budget restarts with the next pending token, not from the first one.
    mailbox.put(_tokens(8))
    assert await _ready_within(mailbox, 2.0)


async def test_the_end_and_errors_are_never_held_back() -> None:
    mailbox = Mailbox(Coalescing(min_tokens=100, max_delay_s=60.0))
    mailbox.put(_tokens(1))
    mailbox.put(EngineOutput(token_ids=(TokenId(2),), finish_reason=FinishReason.LENGTH))
    assert await _ready_within(mailbox, 1.0)
    output = mailbox.take()
    assert output is not None and output.token_ids == (1, 2) and output.finish_reason is FinishReason.LENGTH

    failing = Mailbox(Coalescing(min_tokens=100, max_delay_s=60.0))
    failing.put(_tokens(1))
    failing.put(EngineError("boom"))
    assert await _ready_within(failing, 1.0)
    with pytest.raises(EngineError, match="boom"):
        failing.take()


def test_coalescing_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="min_tokens"):
        Coalescing(min_tokens=0)
    with pytest.raises(ValueError, match="max_delay_s"):
        Coalescing(max_delay_s=-1.0)


async def test_one_failing_mailbox_costs_no_other_its_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    router = OutputRouter()
    good, bad = router.register(RequestId("good")), router.register(RequestId("bad"))

    real_put = Mailbox.put

    def put(self: Mailbox, update: EngineOutput | EngineError) -> None:
        if self is bad:
            raise RuntimeError("reader state broken")
        real_put(self, update)

    monkeypatch.setattr(Mailbox, "put", put)
    done = EngineOutput(token_ids=(TokenId(1),), finish_reason=FinishReason.LENGTH)
    # Published from another thread, as an engine does; both land in one loop callback.
    await asyncio.to_thread(router.publish, [(RequestId("bad"), done), (RequestId("good"), done)])
    await asyncio.wait_for(good.wait(), 5)
    assert good.take() == done
    await asyncio.wait_for(bad.wait(), 5)
    with pytest.raises(EngineError, match="delivery failed"):
        bad.take()
