"""An engine request's stream read to its end: the tokens, logprobs and stats it produced."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from engines.contract import EngineOutput, FinishStats, TokenId


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
