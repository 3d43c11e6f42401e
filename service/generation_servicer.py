"""tokenwire.v1.GenerationService: Generate, Session and Abort."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

import structlog
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.contract import RequestId
from service import errors
from service.generation import STALLED_RETRY_AFTER_S, Delta, Finished
from service.prepared import PreparedGeneration
from service.registry import CancelCause, Ticket
from service.rejections import log_failure, rejected
from service.runtime import Phase, Runtime
from service.stall import StallWatch
from service.tracing import GenerationSpan
from service.validation import input_bytes, prepare_generation, request_id_of
from service.wire_events import fill, fill_delta

log = structlog.get_logger(__name__)

GenerateContext = aio.ServicerContext[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse]
ResponseT = TypeVar("ResponseT", generation_pb2.GenerateResponse, generation_pb2.SessionResponse)
SessionContext = aio.ServicerContext[generation_pb2.SessionRequest, generation_pb2.SessionResponse]
AbortContext = aio.ServicerContext[generation_pb2.AbortRequest, generation_pb2.AbortResponse]


def _log_finished(event: Finished) -> None:
    log.info(
        "generation_finished",
        reason=event.reason.value,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        ttft_ms=None if event.time_to_first_token_s is None else round(event.time_to_first_token_s * 1e3, 1),
        total_ms=round(event.total_s * 1e3, 1),
    )


def _span_attributes(event: Finished, method: str) -> dict[str, str | int | float]:
    attributes: dict[str, str | int | float] = {
        "tokenwire.finish_reason": event.reason.value,
        "tokenwire.completion_tokens": event.completion_tokens,
        "tokenwire.speculative.method": method,
        "tokenwire.total_seconds": event.total_s,
    }
    if event.time_to_first_token_s is not None:
        attributes["tokenwire.time_to_first_token_seconds"] = event.time_to_first_token_s
    return attributes


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def prepare(
        self, request: generation_pb2.GenerateRequest, *, in_session: bool
    ) -> PreparedGeneration:
        """Validate and tokenize ``request``; large inputs are tokenized off the event loop."""
        _, limits = self.runtime.require_serving()
        prepared = await self.runtime.offload.run(
            input_bytes(request),
            prepare_generation,
            request,
            self.runtime.engine.tokenizer,
            limits,
            assigned_id=self.runtime.registry.new_id(),
            require_id=in_session,
        )
        spec = prepared.engine_request.structured_output
        if spec is not None:
            await self.runtime.formats.check(spec)
        return prepared

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: GenerateContext
    ) -> AsyncIterator[generation_pb2.GenerateResponse]:
        arrival = time.monotonic()
        try:
            prepared = await self.prepare(request, in_session=False)
            ticket = self.runtime.runner.claim(prepared)
        except errors.ServiceError as error:
            rejected(error, rpc="Generate", metrics=self.runtime.metrics)
            await errors.abort(context, error)
        self.runtime.admitted("Generate")
        request_id = prepared.engine_request.request_id
        peer = context.peer()
        with (
            structlog.contextvars.bound_contextvars(request_id=request_id, rpc="Generate", peer=peer),
            self.runtime.streams.track(),
        ):
            on_stall = functools.partial(self._stalled, ticket)
            watch = StallWatch(self.runtime.settings.stall_timeout_s, on_stall)
            try:
                responses = self.responses(prepared, ticket, arrival, generation_pb2.GenerateResponse)
                async with contextlib.aclosing(responses):
                    async for response in responses:
                        # gRPC's send waits here while the client's flow-control window is full.
                        watch.sending()
                        yield response
                        watch.sent()
            except errors.ReaderStalled as error:
                await errors.abort(context, error)
            except Exception as error:
                log_failure(error, rpc="Generate", metrics=self.runtime.metrics)
                await errors.abort(context, error)
            finally:
                watch.close()
                self.runtime.registry.release(ticket)  # in case the generation never began

    def _stalled(self, ticket: Ticket) -> None:
        if self.runtime.registry.stall(ticket):
            log.info("reader_stalled", stall_timeout_s=self.runtime.settings.stall_timeout_s)

    async def responses(
        self, prepared: PreparedGeneration, ticket: Ticket, arrival: float, response_type: type[ResponseT]
    ) -> AsyncGenerator[ResponseT, None]:
        """One generation's events as ``response_type`` messages (Generate's or Session's)."""
        request_id = prepared.engine_request.request_id
        info = self.runtime.engine.info
        model = info.model_name
        speculation = prepared.engine_request.speculation
        method = speculation.method.value if speculation is not None else (info.speculative.name or "off")
        meter = self.runtime.metrics.generation(method)
        prompt_tokens = len(prepared.engine_request.prompt_token_ids)
        tracer = self.runtime.tracer
        span = GenerationSpan(tracer, request_id, prompt_tokens, arrival) if tracer is not None else None
        log.info("generation_started", prompt_tokens=prompt_tokens)
        try:
            async with contextlib.aclosing(self.runtime.runner.run(prepared, ticket, arrival)) as events:
                async for event in events:
                    response = response_type(request_id=request_id)
                    if isinstance(event, Delta):
                        fill_delta(response, event, prepared)
                        if event.token_ids:
                            now = time.monotonic()
                            meter.delta(len(event.token_ids), now)
                            if span is not None:
                                span.first_token(now)
                        yield response
                        continue
                    fill(response, event, prepared, model)
                    if isinstance(event, Finished):
                        _log_finished(event)
                        meter.finished(
                            reason=event.reason.value,
                            prompt_tokens=event.prompt_tokens,
                            completion_tokens=event.completion_tokens,
                            stats=event.stats,
                            time_to_first_token_s=event.time_to_first_token_s,
                            total_s=event.total_s,
                        )
                        if span is not None:
                            span.finished(_span_attributes(event, method), event.stats, time.monotonic())
                            span = None
                    yield response
        finally:
            if span is not None:
                span.abandon(time.monotonic())

    async def Session(
        self, request_iterator: AsyncIterator[generation_pb2.SessionRequest], context: SessionContext
    ) -> AsyncIterator[generation_pb2.SessionResponse]:
        if self.runtime.phase is Phase.DRAINING:  # nothing could start on it
            await errors.abort(context, self.runtime.draining())
        session = _Session(self, context.peer())
        async with contextlib.aclosing(session.responses(request_iterator)) as responses:
            async for response in responses:
                yield response

    async def Abort(
        self, request: generation_pb2.AbortRequest, context: AbortContext
    ) -> generation_pb2.AbortResponse:
        try:
            request_id = request_id_of(request.request_id, required=True)
        except errors.ServiceError as error:
            rejected(error, rpc="Abort", metrics=self.runtime.metrics)
            await errors.abort(context, error)
        cancelled = self.runtime.registry.cancel(request_id, CancelCause.CANCELLED)
        log.info("abort", request_id=request_id, cancelled=cancelled)
        return generation_pb2.AbortResponse(cancelled=cancelled)


_END = None


class _Session:
    """One Session stream: a reader task, one task per generation, one outbox, one writer.

    The outbox is small and bounded: when the client reads slowly, generation
    tasks wait for room to put their next event, and meanwhile each
    generation's pending tokens merge in the engine instead of queueing here.
    The end marker never waits for room, so ending never blocks on a reader
    that has gone.

    A writer stuck for the stall timeout stalls every generation on the stream:
    each is cancelled in the engine and gets a RESOURCE_EXHAUSTED ``error``
    event once the client reads again; starts meanwhile are refused the same way.
    When a drain is over, the stream ends OK once its generations have reported.
    """

    OUTBOX_SIZE = 16

    def __init__(self, servicer: GenerationServicer, peer: str) -> None:
        self._servicer = servicer
        self._runtime = servicer.runtime
        self._peer = peer
        self._outbox: asyncio.Queue[generation_pb2.SessionResponse | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(self.OUTBOX_SIZE)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tickets: dict[str, Ticket] = {}
        self._watch: StallWatch | None = None

    async def responses(
        self, requests: AsyncIterator[generation_pb2.SessionRequest]
    ) -> AsyncGenerator[generation_pb2.SessionResponse, None]:
        with (
            structlog.contextvars.bound_contextvars(rpc="Session", peer=self._peer),
            self._runtime.streams.track(),
        ):
            watch = self._watch = StallWatch(self._runtime.settings.stall_timeout_s, self._stalled)
            reader = asyncio.create_task(self._read(requests))
            closer = asyncio.create_task(self._close_when_drained())
            try:
                while (response := await self._outbox.get()) is not _END:
                    self._room.release()
                    watch.sending()
                    yield response
                    watch.sent()
                if reader.done():
                    await reader  # re-raises a failure of the request stream
            finally:
                watch.close()
                reader.cancel()
                closer.cancel()
                for task in self._tasks.values():
                    task.cancel()
                await asyncio.gather(reader, closer, *self._tasks.values(), return_exceptions=True)

    def _stalled(self) -> None:
        stalled = sum(self._runtime.registry.stall(ticket) for ticket in self._tickets.values())
        timeout = self._runtime.settings.stall_timeout_s
        log.info("reader_stalled", generations=stalled, stall_timeout_s=timeout)

    async def _put(self, response: generation_pb2.SessionResponse) -> None:
        await self._room.acquire()
        self._outbox.put_nowait(response)

    async def _send_error(self, request_id: str, error: BaseException) -> None:
        status = errors.to_rpc_status(errors.from_exception(error))
        await self._put(generation_pb2.SessionResponse(request_id=request_id, error=status))

    async def _wait_for_generations(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _read(self, requests: AsyncIterator[generation_pb2.SessionRequest]) -> None:
        try:
            async for message in requests:
                match message.WhichOneof("action"):
                    case "start":
                        await self._start(message.start)
                    case "cancel":
                        request_id = message.cancel.request_id
                        if (ticket := self._tickets.get(request_id)) is not None:
                            ticket.cancel(CancelCause.CANCELLED)
                    case _:
                        violation = errors.FieldViolation("action", "set one of start or cancel")
                        await self._send_error("", errors.InvalidArgument([violation]))
            # Half-close: no more requests; let the running generations finish.
            await self._wait_for_generations()
        finally:
            self._outbox.put_nowait(_END)

    async def _close_when_drained(self) -> None:
        await self._runtime.streams.closing.wait()
        await self._wait_for_generations()
        self._outbox.put_nowait(_END)

    async def _start(self, request: generation_pb2.GenerateRequest) -> None:
        arrival = time.monotonic()
        try:
            # Checked first, alone, so that a bad id is never echoed back or logged.
            request_id = request_id_of(request.request_id, required=True)
        except errors.ServiceError as error:
            rejected(error, rpc="Session", metrics=self._runtime.metrics)
            await self._send_error("", error)
            return
        if request_id in self._tasks:
            duplicate = errors.AlreadyExists(f"request_id {request_id!r} is already in flight on this stream")
            rejected(duplicate, rpc="Session", metrics=self._runtime.metrics)
            await self._send_error(request_id, duplicate)
            return
        if self._watch is not None and self._watch.stalled:
            stalled = errors.ReaderStalled(
                "the stream's reader is not reading; no generation starts until it does",
                STALLED_RETRY_AFTER_S,
            )
            await self._send_error(request_id, stalled)
            return
        try:
            prepared = await self._servicer.prepare(request, in_session=True)
            ticket = self._runtime.runner.claim(prepared)
        except errors.ServiceError as error:
            rejected(error, rpc="Session", metrics=self._runtime.metrics)
            await self._send_error(request_id, error)
            return
        self._runtime.admitted("Session")
        task = asyncio.create_task(self._run(prepared, ticket, arrival))
        self._tasks[request_id] = task
        self._tickets[request_id] = ticket
        task.add_done_callback(functools.partial(self._forget, request_id, ticket))

    def _forget(self, request_id: str, ticket: Ticket, task: asyncio.Task[None]) -> None:
        self._runtime.registry.release(ticket)  # in case the task was cancelled before it began
        if self._tasks.get(request_id) is task:
            del self._tasks[request_id]
            del self._tickets[request_id]

    async def _run(self, prepared: PreparedGeneration, ticket: Ticket, arrival: float) -> None:
        request_id: RequestId = prepared.engine_request.request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            responses = self._servicer.responses(prepared, ticket, arrival, generation_pb2.SessionResponse)
            async with contextlib.aclosing(responses):
                async for response in responses:
                    await self._put(response)
        except errors.ReaderStalled as error:
            await self._send_error(request_id, error)
        except Exception as error:
            log_failure(error, rpc="Session", metrics=self._runtime.metrics)
            await self._send_error(request_id, error)
