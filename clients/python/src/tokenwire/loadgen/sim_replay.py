"""The sim engine's per-request step sizes, replayed on the client from its documented rule.

A server started with ``--engine sim`` in latency mode yields, per step, the
target's own token plus the drafts it accepts. The draws depend only on the
request id and three settings (acceptance, drafts per step, seed), never on
timing, so a load client that chose the request id can tell exactly which
events should arrive one step apart. The rule, as the sim engine documents it:
``rng = random.Random(f"{seed}:{request_id}")``; per step, the drafts are
checked in order, one ``rng.random()`` each, accepted while it is below the
acceptance; the first rejection (or the last draft) ends the step.

This module depends on nothing of the server: the load generator talks to a
server through the API only. tests/test_loadgen.py checks, for many ids and
settings, that this replay and the engine's schedule agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def replay_step_sizes(request_id: str, *, acceptance: float, max_draft: int, seed: int) -> Iterator[int]:
    """Tokens per step the sim engine sends for ``request_id``: endless values in ``[1, max_draft + 1]``."""
    if not 0.0 <= acceptance <= 1.0:
        raise ValueError(f"acceptance must be in [0, 1]; got {acceptance}")
    if max_draft < 0:
        raise ValueError(f"max_draft must be at least 0; got {max_draft}")
    draws = random.Random(f"{seed}:{request_id}")
    while True:
        accepted = 0
        # Each draft is judged only while every earlier one of this step was accepted.
        for _ in range(max_draft):
            if draws.random() >= acceptance:
                break
            accepted += 1
        yield 1 + accepted
