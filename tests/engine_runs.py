"""Engine requests built for the tests, and their streams read to the end: tokens, logprobs, stats.

The request builders and stream readers the engine-level tests share (through the engine
contract, no gRPC): a chat prompt rendered by the engine's own tokenizer, then run to its end.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from engines.contract import (
    ChatMessage,
    Engine,
    EngineOutput,
    EngineRequest,
    FinishStats,
    RequestId,
    SamplingParams,
    SpeculationParams,
    StoppingParams,
    TokenId,
)

GREEDY = SamplingParams(temperature=0.0)

_request_numbers = itertools.count()


def prompt_request(
    engine: Engine,
    prompt: str,
    speculation: SpeculationParams | None = None,
    *,
    max_tokens: int,
    sampling: SamplingParams = GREEDY,
    chat: bool = True,
    logprobs: bool = False,
    id_prefix: str = "r",
    **stopping: Any,
) -> EngineRequest:
    """A request for ``prompt``, as the user's message in the model's chat template (or, with
    ``chat=False``, as it is), tokenized by ``engine``; its id is unique in the test session.

    ``logprobs``: with the top two candidates. ``stopping``: StoppingParams' other fields.
    """
    tokenizer = engine.tokenizer
    text = tokenizer.render_chat([ChatMessage("user", prompt)]) if chat else prompt
    return EngineRequest(
        request_id=RequestId(f"{id_prefix}{next(_request_numbers)}"),
        prompt_token_ids=tuple(tokenizer.encode(text)),
        sampling=sampling,
        stopping=StoppingParams(max_tokens=max_tokens, **stopping),
        logprobs=logprobs,
        top_logprobs=2 if logprobs else 0,
        speculation=speculation,
    )


async def outputs_and_tokens(
    stream: AsyncGenerator[EngineOutput, None],
) -> tuple[list[EngineOutput], list[TokenId]]:
    """Every output of ``stream``, and their tokens in order."""
    outputs = [output async for output in stream]
    return outputs, [t for o in outputs for t in o.token_ids]


async def tokens_and_last(stream: AsyncGenerator[EngineOutput, None]) -> tuple[list[TokenId], EngineOutput]:
    """The tokens of ``stream``, and its last output (an empty one if there was none)."""
    outputs, tokens = await outputs_and_tokens(stream)
    return tokens, outputs[-1] if outputs else EngineOutput()


@dataclass
class Run:
    tokens: list[TokenId]
    logprobs: list[float]
    stats: FinishStats


async def drain(stream: AsyncGenerator[EngineOutput, None]) -> Run:
    tokens: list[TokenId] = []
    logprobs: list[float] = []
    last = EngineOutput()
    async for output in stream:
        tokens += output.token_ids
        logprobs += [item.logprob for item in output.logprobs]
        last = output
    assert last.stats is not None
    return Run(tokens, logprobs, last.stats)
