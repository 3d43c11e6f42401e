"""EAGLE-3 as a ``speculation.Drafter``: what the head has seen of each request.

Every pass that runs an EAGLE-3 request, batched or not, also returns the
target's hidden states at the three feature layers: the head needs them for
every verified position. They wait in the request's pending list until its next
draft enters them into the head's own cache (one entry per position: features
at p with the token at p+1), so the head runs once per step, right before it
drafts. The head's cache has the same free rollback as the target's: entries
past the verified length are overwritten by the next draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from engines.contract import RequestId, TokenId
from engines.native import drafting
from engines.native.eagle3.head import Eagle3Config
from engines.native.request_state import RequestState


class Head(Protocol):
    """What drafting needs of the head at inference (``head.Eagle3Drafter``)."""

    @property
    def config(self) -> Eagle3Config: ...

    def draft(
        self, slot: int, start: int, features: torch.Tensor, next_tokens: Sequence[int], max_draft: int
    ) -> list[int]:
        """Enter verified positions ``start..`` into ``slot`` and propose up to ``max_draft`` tokens."""
        ...


@dataclass(slots=True)
class _HeadProgress:
    """One request's place in the head's cache (mutable; worker thread only)."""

    entered: int = 0
    """Positions ``[0, entered)`` are in the head's cache."""
    pending: list[torch.Tensor] = field(default_factory=list)
    """Target features ``[n, 3 dim]`` of the positions from ``entered`` on, in order."""


class Eagle3Drafting:
    """Drafts with the EAGLE-3 head in each request's slot; keeps each request's head progress."""

    def __init__(self, head: Head) -> None:
        self._head = head
        self._requests: dict[RequestId, _HeadProgress] = {}

    @property
    def feature_layers(self) -> tuple[int, int, int]:
        return self._head.config.feature_layers

    def observe(self, state: RequestState, features: torch.Tensor) -> None:
        """Keep the features until the next draft enters them into the head."""
        self._requests.setdefault(state.request_id, _HeadProgress()).pending.append(features)

    def forget(self, request_id: RequestId) -> None:
        self._requests.pop(request_id, None)

    def propose(self, state: RequestState, limit: int) -> tuple[TokenId, ...]:
        """The head's draft, or prompt lookup's when that is longer; may be empty."""
        tokens = state.tokens
        drafted = self._draft(state, tokens, limit)
        # Output that copies its context is prompt lookup's strength and the head's
        # weakness (measured: 2.25 vs 1.19 tokens per step on a copy-heavy prompt): when
        # lookup proposes more than the head dares, verify lookup's draft instead.
        # Only 3-token matches: with 2-token ones, open-ended text drafted far more for
        # few more accepted tokens.
        lookup = drafting.propose(tokens, limit, min_ngram=drafting.MAX_NGRAM)
        return lookup if len(lookup) > len(drafted) else drafted

    def _draft(self, state: RequestState, tokens: list[TokenId], limit: int) -> tuple[TokenId, ...]:
        """Enter the positions verified since the last draft into the head, then draft after them."""
        seen = self._requests.setdefault(state.request_id, _HeadProgress())
        start = seen.entered
        # Every position but the last (the target's newest token, not yet run through the
        # target) has features and a known next token.
        features = torch.cat(seen.pending) if len(seen.pending) != 1 else seen.pending[0]
        if features.shape[0] != len(tokens) - 1 - start:
            raise RuntimeError(
                f"EAGLE-3 features cover {features.shape[0]} positions, expected {len(tokens) - 1 - start}"
            )
        drafted = self._head.draft(state.slot, start, features, tokens[start + 1 :], limit)
        seen.entered = len(tokens) - 1
        seen.pending = []
        return tuple(TokenId(t) for t in drafted)
