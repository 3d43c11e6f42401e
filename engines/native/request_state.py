"""The native engine's record of one request on its way through the model.

Built when the request is submitted; from then on only the worker thread
touches it (the scheduler, the step functions and the drafters), and it is
dropped when the request ends. It never leaves the native engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from engines.contract import EngineRequest, RequestId, SpeculationParams, TokenId
from engines.native.sampling import Constraint, RequestSampler
from engines.request_table import Progress
from engines.structured import Grammars


@dataclass(slots=True)
class RequestState:
    """Worker-side state of one request (mutable)."""

    request: EngineRequest
    sampler: RequestSampler
    progress: Progress
    speculation: SpeculationParams
    """How it speculates: its own choice, or the engine's default."""
    limit: int
    """Most output tokens: ``max_tokens``, or what the context leaves after the prompt."""
    eos: frozenset[TokenId]
    """End-of-sequence tokens that end it (none with ``ignore_eos``)."""
    slot: int = -1
    """Its KV-cache slot while it is active."""
    prefilled: int = 0
    """Prompt tokens already run through the model (or copied from the prefix cache)."""
    output: list[TokenId] = field(default_factory=list)
    cache_checked: bool = False
    """The prefix cache was asked for its prompt (once, before its first prompt chunk)."""
    stored: int = 0
    """Positions ``[0, stored)`` are in the prefix cache (whole blocks, offered as they became final)."""
    stored_key: bytes | None = None
    """The prefix cache's key of the block ending at ``stored`` (None while ``stored`` is 0)."""
    feature_tail: list[torch.Tensor] | None = None
    """With a drafter that reads features: the feature rows of positions ``stored`` onwards."""

    @classmethod
    def submitted(
        cls,
        request: EngineRequest,
        *,
        eos_token_ids: frozenset[TokenId],
        vocab_size: int,
        context_length: int,
        speculation: SpeculationParams,
        now: float,
        grammars: Grammars | None = None,
    ) -> RequestState:
        """The state of ``request`` as it is submitted at ``now``; ``speculation`` is the default."""
        stopping = request.stopping
        eos = frozenset[TokenId]() if stopping.ignore_eos else eos_token_ids
        sampler = RequestSampler(
            request.sampling,
            prompt_token_ids=request.prompt_token_ids,
            vocab_size=vocab_size,
            banned_before_min_tokens=set(stopping.stop_token_ids) | set(eos),
            min_tokens=stopping.min_tokens,
            logprobs=request.logprobs,
            top_logprobs=request.top_logprobs,
            constraint=_constraint(request, grammars),
        )
        return cls(
            request=request,
            sampler=sampler,
            progress=Progress(submitted_at=now),
            speculation=request.speculation if request.speculation is not None else speculation,
            limit=min(stopping.max_tokens, context_length - len(request.prompt_token_ids)),
            eos=eos,
        )

    @property
    def request_id(self) -> RequestId:
        return self.request.request_id

    @property
    def prompt_len(self) -> int:
        return len(self.request.prompt_token_ids)

    @property
    def tokens(self) -> list[TokenId]:
        """Prompt and output so far."""
        return [*self.request.prompt_token_ids, *self.output]


def _constraint(request: EngineRequest, grammars: Grammars | None) -> Constraint | None:
    spec = request.structured_output
    if spec is None:
        return None
    if grammars is None:
        raise ValueError("this engine was built without structured output")
    return Constraint(functools.partial(grammars.matcher, spec), grammars.eos_token_ids)
