"""Prompt lookup: a drafter that needs no model.

Text that copies from its context (code edits, quotes, extraction, lists that
repeat a pattern) often continues the way it did the last time the same few
tokens appeared. The drafter finds the most recent earlier occurrence of the
last ``n`` tokens (``n`` from ``MAX_NGRAM`` down to ``MIN_NGRAM``) in prompt plus output
and proposes the tokens that followed it. The target model verifies them, so a
bad guess costs only the extra positions of one forward pass; on this CPU those
are not free (a 5-token pass took ~1.9x a 1-token step of the native model), so
single-token matches, which were rarely right, do not draft at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engines.contract import RequestId, TokenId

if TYPE_CHECKING:
    import torch

    from engines.native.request_state import RequestState

MAX_NGRAM = 3
"""Longest suffix matched; longer matches are tried first, as they predict better."""
MIN_NGRAM = 2
"""Shortest suffix matched. With 1, open-ended text drafted on most steps and had ~12% of the
drafts accepted, which made it 15% slower than no speculation; with 2 it broke even and the
copy-heavy prompt kept all of its accepted drafts (128 greedy tokens, draft length 4)."""


def propose(tokens: Sequence[int], max_draft: int, min_ngram: int = MIN_NGRAM) -> tuple[TokenId, ...]:
    """Up to ``max_draft`` tokens that followed the latest earlier match of the suffix of ``tokens``.

    Empty when no suffix of ``min_ngram`` to ``MAX_NGRAM`` tokens occurred before, or ``max_draft < 1``.
    """
    length = len(tokens)
    if max_draft < 1 or length <= min_ngram:
        return ()
    history = np.asarray(tokens, dtype=np.int64)
    for n in range(min(MAX_NGRAM, length - 1), min_ngram - 1, -1):
        suffix = history[-n:]
        # Windows starting at 0 .. length-n-1: every occurrence that ends before the suffix does
        # and so has at least one following token.
        windows = sliding_window_view(history[:-1], n)
        matches = np.flatnonzero((windows == suffix).all(axis=1))
        if matches.size:
            follow = int(matches[-1]) + n
            return tuple(TokenId(int(t)) for t in history[follow : follow + max_draft])
    return ()


class PromptLookup:
    """Prompt lookup as a ``speculation.Drafter``: it reads only the tokens, so it keeps no state."""

    @property
    def feature_layers(self) -> None:
        return None

    def propose(self, state: RequestState, limit: int) -> tuple[TokenId, ...] | None:
        """The lookup's draft; None when there is no match (the request takes the shared step)."""
        return propose(state.tokens, limit) or None

    def observe(self, state: RequestState, features: torch.Tensor) -> None:
        """Features are of no use to lookup."""

    def forget(self, request_id: RequestId) -> None:
        """Nothing is kept."""
