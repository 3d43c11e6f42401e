"""Timing Generate streams through the gRPC API, as a client sees them.

One request's clock starts just before the call is made and stops at its
final (Finished) event, so end-to-end rates include the prompt's prefill,
queueing, detokenization and the wire. Decode-only rates count what follows
the first delta event.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

REQUEST_TIMEOUT_S = 600.0
"""No single request may take longer: bounds the whole run even if a server stalls."""


@dataclass(frozen=True, slots=True)
class Timing:
    """One generation, timed from the client. Times are seconds since the call was made."""

    tokens: int
    """Completion tokens (the final event's usage)."""
    first_tokens: int
    """Tokens in the first delta event (1, unless the engine sent several at once)."""
    first_s: float
    """Time to the first token."""
    last_s: float
    """Time to the last delta."""
    total_s: float
    """Time to the final event."""
    steps: int = 0
    """Target forward passes after the prefill, when the server reports speculation stats."""
    accepted: int = 0
    """Accepted draft tokens, when the server reports speculation stats."""

    @property
    def end_to_end_tps(self) -> float:
        return self.tokens / self.total_s

    @property
    def decode_tps(self) -> float:
        """Tokens after the first event per second after it (nan if there were none)."""
        span = self.last_s - self.first_s
        return (self.tokens - self.first_tokens) / span if span > 0 else float("nan")


def median(values: Sequence[float]) -> float:
    present = [v for v in values if v == v]  # drop NaN
    return statistics.median(present) if present else float("nan")


def chat_request(prompt: str, max_tokens: int, *, ignore_eos: bool = True) -> generation_pb2.GenerateRequest:
    """Greedy, exactly ``max_tokens`` tokens (EOS ignored), token ids only: the benchmark's request."""
    return generation_pb2.GenerateRequest(
        chat=generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content=prompt)]),
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=ignore_eos),
        output=generation_pb2.OutputOptions(token_ids=True, text=False),
    )


async def generate(channel: aio.Channel, request: generation_pb2.GenerateRequest) -> Timing:
    stub = generation_pb2_grpc.GenerationServiceStub(channel)
    first_s = last_s = -1.0
    first_tokens = 0
    start = time.perf_counter()
    finished: generation_pb2.Finished | None = None
    async for response in stub.Generate(request, timeout=REQUEST_TIMEOUT_S):
        now = time.perf_counter() - start
        kind = response.WhichOneof("event")
        if kind == "delta" and response.delta.token_ids:
            if first_s < 0:
                first_s, first_tokens = now, len(response.delta.token_ids)
            last_s = now
        elif kind == "finished":
            finished = response.finished
    total_s = time.perf_counter() - start
    if finished is None or first_s < 0:
        raise RuntimeError("the stream ended without tokens or without a Finished event")
    speculative = finished.speculative
    return Timing(
        tokens=finished.usage.completion_tokens,
        first_tokens=first_tokens,
        first_s=first_s,
        last_s=last_s,
        total_s=total_s,
        steps=speculative.decode_steps,
        accepted=speculative.accepted_tokens,
    )


@dataclass(frozen=True, slots=True)
class Aggregate:
    """``streams`` requests started together."""

    streams: int
    tokens: int
    wall_s: float
    """From starting the requests to the last one's final event."""

    @property
    def tps(self) -> float:
        return self.tokens / self.wall_s


async def concurrent(channel: aio.Channel, requests: Sequence[generation_pb2.GenerateRequest]) -> Aggregate:
    start = time.perf_counter()
    timings = await asyncio.gather(*(generate(channel, r) for r in requests))
    return Aggregate(len(requests), sum(t.tokens for t in timings), time.perf_counter() - start)


async def tokenize_chat(channel: aio.Channel, prompt: str) -> list[int]:
    """The token ids the server generates from for ``prompt`` as a chat user message."""
    stub = model_pb2_grpc.ModelServiceStub(channel)
    chat = generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content=prompt)])
    reply = await stub.Tokenize(model_pb2.TokenizeRequest(chat=chat), timeout=60.0)
    return list(reply.token_ids)


async def speculation_label(channel: aio.Channel) -> str:
    """What the server does for requests that do not choose, e.g. ``eagle3 k=4`` or ``off``."""
    stub = model_pb2_grpc.ModelServiceStub(channel)
    info = await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=60.0)
    spec = info.speculative
    return f"{spec.method} k={spec.draft_length}" if spec.enabled else "off"
