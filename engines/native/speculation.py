"""Speculative decoding's seam: a drafter proposes tokens, the target verifies them.

Two drafters implement ``Drafter``: prompt lookup (``drafting.PromptLookup``)
and the EAGLE-3 head (``eagle3.drafting.Eagle3Drafting``). Each keeps whatever
it needs of a request between steps itself, and drops it on ``forget``. The
target's side, verification, is ``steps.verify``; which requests speculate at
all is the scheduler's choice.

A drafter may propose nothing in two ways. ``None``: nothing to verify, the
request takes one token in the shared batched step like a request that does not
speculate. An empty draft: the request still takes a forward pass of its own,
which EAGLE-3 wants (its head stops at the first token it is not confident of,
yet needs the target's features of every position).
"""

from __future__ import annotations

from typing import Protocol, assert_never

import torch

from engines.contract import RequestId, SpeculationMethod, TokenId
from engines.native.request_state import RequestState


class Drafter(Protocol):
    """Proposes the tokens a request's next target step verifies (worker thread only)."""

    @property
    def feature_layers(self) -> tuple[int, int, int] | None:
        """Target layers whose hidden states it reads at every verified position; None: none."""
        ...

    def propose(self, state: RequestState, limit: int) -> tuple[TokenId, ...] | None:
        """Up to ``limit`` (at least 1) tokens to follow the request's newest token.

        None: nothing to verify this step; an empty draft: a pass of its own all the same.
        """
        ...

    def observe(self, state: RequestState, features: torch.Tensor) -> None:
        """The target's features ``[n, 3 dim]`` at the request's next ``n`` verified positions."""
        ...

    def forget(self, request_id: RequestId) -> None:
        """Drop what it keeps of a request that ended; a no-op for unknown ids."""
        ...


def drafter_for(method: SpeculationMethod, *, lookup: Drafter, eagle3: Drafter | None) -> Drafter | None:
    """The drafter of a request that chose ``method``; None when it does not speculate."""
    match method:
        case SpeculationMethod.OFF:
            return None
        case SpeculationMethod.NGRAM:
            return lookup
        case SpeculationMethod.EAGLE3:
            # Without a head (the service refuses such requests) the request does not speculate.
            return eagle3
        case _:
            assert_never(method)


def draft(state: RequestState, drafter: Drafter) -> tuple[TokenId, ...] | None:
    """This step's draft for ``state``; None when it takes a plain step in the shared batch."""
    # Leave room for the target's own token after the drafts, within max_tokens and the
    # context, so a step never computes tokens that could not be emitted.
    room = state.limit - len(state.output)
    limit = min(state.speculation.draft_length, room - 1)
    if limit < 1:
        # At most one more token: the request ends with it, the drafter is not needed again.
        return None
    return drafter.propose(state, limit)
