"""service/stall.py: a send that waits the stall timeout is reported once per stall."""

from __future__ import annotations

import asyncio

from service.stall import StallWatch
from tests.cli_process import run

TIMEOUT_S = 0.05


async def test_a_send_that_waits_is_reported_once_per_stall() -> None:
    stalls = asyncio.Queue[None]()
    watch = StallWatch(TIMEOUT_S, lambda: stalls.put_nowait(None))
    try:
        watch.sending()
        await asyncio.wait_for(stalls.get(), 5.0)
        assert watch.stalled
        # Still stuck on the same send: no second report, whatever the timer does meanwhile.
        await asyncio.sleep(TIMEOUT_S * 4)
        assert stalls.empty() and watch.stalled
        watch.sent()
        assert not watch.stalled
        # A later send that waits is a new stall.
        watch.sending()
        await asyncio.wait_for(stalls.get(), 5.0)
    finally:
        watch.close()


async def test_nothing_is_reported_without_a_pending_send_or_after_close() -> None:
    stalls: list[None] = []
    idle = StallWatch(TIMEOUT_S, lambda: stalls.append(None))
    closed = StallWatch(TIMEOUT_S, lambda: stalls.append(None))
    off = StallWatch(None, lambda: stalls.append(None))
    closed.sending()
    closed.close()
    off.sending()
    try:
        await asyncio.sleep(TIMEOUT_S * 4)
    finally:
        idle.close()
    assert stalls == []


def test_stall_timeout_flag_and_environment() -> None:
    shown = run("serve", "--help")
    text = " ".join(shown.stdout.split())
    assert "--stall-timeout" in text and "TOKENWIRE_STALL_TIMEOUT" in text and "default: 30.0" in text
    bad = run("serve", "--help", env={"TOKENWIRE_STALL_TIMEOUT": "-1"})
    assert bad.returncode != 0 and "TOKENWIRE_STALL_TIMEOUT" in bad.stderr
