"""One generation's life above the engine: engine outputs in, stream events out.

Shared by Generate and Session. Owns the request-id claim, the request's own
timeout, incremental detokenization, stop strings, the size of each event and
the bookkeeping of the final event. Every path out of ``run`` (normal end,
caller cancellation, errors) closes the engine stream, which frees the engine
slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass

import structlog

from engines.contract import (
    Engine,
    EngineOutput,
    EngineRequest,
    FinishReason,
    FinishStats,
    RequestId,
    TokenId,
    TokenLogprob,
)
from service.detokenize import IncrementalDetokenizer
from service.errors import Internal, ReaderStalled
from service.prepared import PreparedGeneration
from service.registry import CancelCause, RequestRegistry, Ticket
from service.stop_strings import StopStringMatcher, detokenize_until_stop

log = structlog.get_logger(__name__)

MAX_EVENT_TOKENS = 256
"""Most tokens in one delta. A reader that lags gets its pending tokens merged into few events;
this keeps each one far below the 4 MiB gRPC clients accept by default, even with 20 top
logprobs per token (about 250 bytes each)."""

STALLED_RETRY_AFTER_S = 1.0
"""RetryInfo for a generation ended because its reader stopped reading."""


class EndReason(enum.Enum):
    END_OF_SEQUENCE = "end_of_sequence"
    LENGTH = "length"
    STOP_STRING = "stop_string"
    STOP_TOKEN = "stop_token"
    CANCELLED = "cancelled"
    DEADLINE = "deadline"
    STRUCTURED_OUTPUT_COMPLETE = "structured_output_complete"


@dataclass(frozen=True, slots=True)
class Started:
    prompt_tokens: int


@dataclass(slots=True)
class Delta:
    """A value, never changed once made; not frozen because one is made per event (as
    ``EngineOutput``, whose docstring has the measurement)."""

    token_ids: tuple[TokenId, ...]
    text: str
    logprobs: tuple[TokenLogprob, ...]
    sample_index: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    reason: EndReason
    stop_string: str | None
    stop_token_id: TokenId | None
    prompt_tokens: int
    completion_tokens: int
    stats: FinishStats
    time_to_first_token_s: float | None
    total_s: float
    sample_index: int = 0


GenerationEvent = Started | Delta | Finished


_ENGINE_REASONS = {
    FinishReason.END_OF_SEQUENCE: EndReason.END_OF_SEQUENCE,
    FinishReason.LENGTH: EndReason.LENGTH,
    FinishReason.STOP_TOKEN: EndReason.STOP_TOKEN,
    FinishReason.CANCELLED: EndReason.CANCELLED,
    FinishReason.STRUCTURED_OUTPUT_COMPLETE: EndReason.STRUCTURED_OUTPUT_COMPLETE,
}


class _TextState:
    """Detokenizer plus stop-string matcher for one generation."""

    def __init__(self, engine: Engine, prepared: PreparedGeneration) -> None:
        request = prepared.engine_request
        self._detok = IncrementalDetokenizer(engine.tokenizer, request.prompt_token_ids)
        self._matcher = StopStringMatcher(prepared.stop_strings) if prepared.stop_strings else None
        self._min_tokens = request.stopping.min_tokens
        self.completion_tokens = 0
        self.matched_stop: str | None = None

    def push(self, output: EngineOutput) -> Delta:
        """The delta for ``output``'s tokens, cut after the token that completes a stop string.

        Stop strings are looked for only in text generated after ``min_tokens``.
        """
        ids = output.token_ids
        if self._matcher is None:
            self.completion_tokens += len(ids)
            return Delta(ids, self._detok.push(ids), output.logprobs)
        exempt = ids[: max(0, self._min_tokens - self.completion_tokens)]
        text = self._detok.push(exempt) if exempt else ""
        step = detokenize_until_stop(self._detok, self._matcher, ids[len(exempt) :])
        kept = len(exempt) + step.consumed
        self.completion_tokens += kept
        self.matched_stop = step.matched
        return Delta(ids[:kept], text + step.text, output.logprobs[:kept])

    def flush(self) -> str:
        """Text held back at the end (an incomplete character or a possible stop-string prefix)."""
        text = self._detok.flush()
        if self._matcher is None:
            return text
        last = self._matcher.feed(text)
        if last.matched is not None:  # the held-back text completed a stop
            self.matched_stop = last.matched
            return last.text
        return last.text + self._matcher.flush()


class GenerationRunner:
    """Runs generations against one engine, recording them in the registry."""

    def __init__(self, engine: Engine, registry: RequestRegistry) -> None:
        self._engine = engine
        self._registry = registry

    def claim(self, prepared: PreparedGeneration) -> Ticket:
        """Register the generation's id; raises ``AlreadyExists``, or ``Unavailable`` once the drain
        has closed the registry. Hand the ticket to ``run``, which releases it."""
        request_id = prepared.engine_request.request_id
        samples = tuple(sample_id(request_id, i) for i in range(1, prepared.samples))
        return self._registry.register(request_id, samples)

    async def run(
        self, prepared: PreparedGeneration, ticket: Ticket, arrival: float
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Events of one generation claimed as ``ticket``. Raises engine errors before ``Started``,
        and ``ReaderStalled`` instead of any event once the ticket was stalled.

        Callers must close the iterator (``contextlib.aclosing``) so that an
        abandoned stream frees its engine slot at once.
        """
        if prepared.samples > 1:
            async with contextlib.aclosing(self._run_samples(prepared, ticket, arrival)) as sampled:
                async for event in sampled:
                    yield event
            return
        request = prepared.engine_request
        timer: asyncio.TimerHandle | None = None
        outputs: AsyncGenerator[EngineOutput, None] | None = None
        try:
            outputs = self._engine.generate(request)
            if ticket.cause is not None:  # cancelled between the claim and the submission
                self._engine.cancel(request.request_id)
            timer = _deadline_timer(prepared, ticket, arrival)
            async for event in self._events(prepared, ticket, outputs, arrival):
                if ticket.cause is CancelCause.STALLED:
                    raise _stalled()
                yield event
        finally:
            if timer is not None:
                timer.cancel()
            self._registry.release(ticket)
            if outputs is not None:
                await outputs.aclose()

    async def _events(
        self,
        prepared: PreparedGeneration,
        ticket: Ticket,
        outputs: AsyncIterator[EngineOutput],
        arrival: float,
    ) -> AsyncIterator[GenerationEvent]:
        request = prepared.engine_request
        prompt_tokens = len(request.prompt_token_ids)
        yield Started(prompt_tokens)
        state = _TextState(self._engine, prepared)
        first_token_at: float | None = None
        async for merged in outputs:
            pieces = (
                (merged,) if len(merged.token_ids) <= MAX_EVENT_TOKENS else _pieces(merged, MAX_EVENT_TOKENS)
            )
            for output in pieces:
                if output.token_ids and state.matched_stop is None:
                    if first_token_at is None:
                        first_token_at = time.monotonic()
                    delta = state.push(output)
                    if state.matched_stop is not None and output.finish_reason is None:
                        ticket.cancel(CancelCause.STOP_STRING)
                    if delta.token_ids or delta.text:
                        yield delta
                if output.finish_reason is None:
                    continue
                if state.matched_stop is None and (tail := state.flush()):
                    yield Delta((), tail, ())
                yield Finished(
                    reason=self._reason(output.finish_reason, ticket, state.matched_stop),
                    stop_string=state.matched_stop,
                    stop_token_id=output.stop_token_id if state.matched_stop is None else None,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=state.completion_tokens,
                    stats=output.stats or FinishStats(queued_s=0.0),
                    time_to_first_token_s=None if first_token_at is None else first_token_at - arrival,
                    total_s=time.monotonic() - arrival,
                )
                return
        raise Internal("the engine ended a stream without a final output")

    async def _run_samples(
        self, prepared: PreparedGeneration, ticket: Ticket, arrival: float
    ) -> AsyncGenerator[GenerationEvent, None]:
        """``run`` for n > 1: the samples' events, merged as they come, each tagged with its index."""
        timer: asyncio.TimerHandle | None = None
        samples = _Samples(self._engine, prepared, ticket, arrival)
        try:
            samples.start(0)  # raises EngineOverloaded here, before Started
            timer = _deadline_timer(prepared, ticket, arrival)
            async for event in samples.events():
                if ticket.cause is CancelCause.STALLED:
                    raise _stalled()
                yield event
        finally:
            if timer is not None:
                timer.cancel()
            self._registry.release(ticket)
            await samples.close()

    @staticmethod
    def _reason(engine_reason: FinishReason, ticket: Ticket, matched_stop: str | None) -> EndReason:
        if matched_stop is not None:
            return EndReason.STOP_STRING
        if engine_reason is FinishReason.CANCELLED and ticket.cause is CancelCause.DEADLINE:
            return EndReason.DEADLINE
        return _ENGINE_REASONS[engine_reason]


def _deadline_timer(
    prepared: PreparedGeneration, ticket: Ticket, arrival: float
) -> asyncio.TimerHandle | None:
    """Cancels ``ticket`` (DEADLINE) when the request's own timeout passes; None without one."""
    if prepared.timeout_s is None:
        return None
    remaining = prepared.timeout_s - (time.monotonic() - arrival)
    return asyncio.get_running_loop().call_later(max(remaining, 0.0), ticket.cancel, CancelCause.DEADLINE)


def _stalled() -> ReaderStalled:
    return ReaderStalled(
        "the stream's reader took nothing for the stall timeout while output was pending; "
        "the generation was cancelled",
        STALLED_RETRY_AFTER_S,
    )


def _pieces(output: EngineOutput, limit: int) -> Iterator[EngineOutput]:
    """``output`` cut into outputs of at most ``limit`` tokens; only the last one ends the request.

    An engine hands over everything a lagging reader has not taken as one output; cutting it
    here bounds every event whatever the engine merged.
    """
    ids = output.token_ids
    for start in range(0, len(ids), limit):
        end = start + limit
        if end < len(ids):
            yield EngineOutput(token_ids=ids[start:end], logprobs=output.logprobs[start:end])
        else:
            yield dataclasses.replace(output, token_ids=ids[start:], logprobs=output.logprobs[start:])


SAMPLE_SEPARATOR = "\x1f"
"""Joins a request id and a sample index into the sample's engine id: a control character, which
no caller's id may hold, so a sample's id never meets another request's."""


def sample_id(request_id: RequestId, index: int) -> RequestId:
    """The engine id of sample ``index`` (sample 0 runs under the request's own id)."""
    return request_id if index == 0 else RequestId(f"{request_id}{SAMPLE_SEPARATOR}{index}")


def sample_request(request: EngineRequest, index: int) -> EngineRequest:
    """Sample ``index`` of ``request``: its own id, and seed + index when the request has a seed."""
    if index == 0:
        return request
    sampling = request.sampling
    if sampling.seed is not None:
        sampling = dataclasses.replace(sampling, seed=(sampling.seed + index) % 2**64)
    return dataclasses.replace(request, request_id=sample_id(request.request_id, index), sampling=sampling)


_End = object()
"""A sample's engine stream ended."""


class _Samples:
    """The n engine streams of one request with n > 1, read by one task each into one bounded queue.

    Sample 0 is submitted first, the others when its first output arrives: by then its prompt
    is processed, and an engine with a prefix cache serves theirs from it (the prefill is shared).
    The queue holds at most two items per sample, so a slow reader stops the readers and the
    engine coalesces their tokens, as for one stream. A stop string ends its own sample; a
    cancel, the timeout or a stalled reader end them all (the ticket knows every sample's id).
    """

    def __init__(self, engine: Engine, prepared: PreparedGeneration, ticket: Ticket, arrival: float) -> None:
        self._engine = engine
        self._prepared = prepared
        self._ticket = ticket
        self._arrival = arrival
        n = prepared.samples
        self._queue: asyncio.Queue[tuple[int, EngineOutput | BaseException | object]] = asyncio.Queue(2 * n)
        self._streams: list[AsyncGenerator[EngineOutput, None]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, index: int) -> None:
        """Submit sample ``index`` (raises ``EngineOverloaded`` as ``Engine.generate`` does)."""
        stream = self._engine.generate(sample_request(self._prepared.engine_request, index))
        self._streams.append(stream)
        if self._ticket.cause is not None:  # cancelled before this submission
            self._engine.cancel(sample_id(self._prepared.engine_request.request_id, index))
        self._tasks.append(asyncio.get_running_loop().create_task(self._pump(index, stream)))

    async def _pump(self, index: int, stream: AsyncIterator[EngineOutput]) -> None:
        try:
            async for output in stream:
                await self._queue.put((index, output))
        except Exception as error:
            await self._queue.put((index, error))
            return
        await self._queue.put((index, _End))

    async def events(self) -> AsyncIterator[GenerationEvent]:
        prepared = self._prepared
        request = prepared.engine_request
        n = prepared.samples
        prompt_tokens = len(request.prompt_token_ids)
        yield Started(prompt_tokens)
        states = [_TextState(self._engine, prepared) for _ in range(n)]
        first_token_at: list[float | None] = [None] * n
        done = [False] * n
        prompt_reported = False
        while not all(done):
            index, item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is _End:
                if not done[index]:
                    raise Internal("the engine ended a stream without a final output")
                continue
            assert isinstance(item, EngineOutput)
            if len(self._streams) < n:
                self._start_the_rest()
            state = states[index]
            pieces = (item,) if len(item.token_ids) <= MAX_EVENT_TOKENS else _pieces(item, MAX_EVENT_TOKENS)
            for output in pieces:
                if output.token_ids and state.matched_stop is None:
                    if first_token_at[index] is None:
                        first_token_at[index] = time.monotonic()
                    delta = state.push(output)
                    delta.sample_index = index
                    if state.matched_stop is not None and output.finish_reason is None:
                        self._engine.cancel(sample_id(request.request_id, index))
                    if delta.token_ids or delta.text:
                        yield delta
                if output.finish_reason is None:
                    continue
                if state.matched_stop is None and (tail := state.flush()):
                    yield Delta((), tail, (), index)
                first = first_token_at[index]
                done[index] = True
                yield Finished(
                    reason=GenerationRunner._reason(output.finish_reason, self._ticket, state.matched_stop),
                    stop_string=state.matched_stop,
                    stop_token_id=output.stop_token_id if state.matched_stop is None else None,
                    prompt_tokens=0 if prompt_reported else prompt_tokens,
                    completion_tokens=state.completion_tokens,
                    stats=output.stats or FinishStats(queued_s=0.0),
                    time_to_first_token_s=None if first is None else first - self._arrival,
                    total_s=time.monotonic() - self._arrival,
                    sample_index=index,
                )
                prompt_reported = True
                break

    def _start_the_rest(self) -> None:
        for index in range(len(self._streams), self._prepared.samples):
            self.start(index)

    async def close(self) -> None:
        """Stop the readers, then close every engine stream (which frees its slot)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
