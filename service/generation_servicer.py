"""tokenwire.v1.GenerationService: Generate, Session and Abort."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

import structlog
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.contract import RequestId
from service import errors
from service.generation import Finished, PreparedGeneration
from service.registry import CancelCause
from service.rejections import log_failure, rejected
from service.runtime import Runtime
from service.validation import input_bytes, prepare_generation, request_id_of
from service.wire_events import fill

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


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def prepare(
        self, request: generation_pb2.GenerateRequest, *, in_session: bool
    ) -> PreparedGeneration:
        """Validate and tokenize ``request``; large inputs are tokenized off the event loop."""
        _, limits = self.runtime.require_serving()
        return await self.runtime.offload.run(
            input_bytes(request),
            prepare_generation,
            request,
            self.runtime.engine.tokenizer,
            limits,
            assigned_id=self.runtime.registry.new_id(),
            require_id=in_session,
        )

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: GenerateContext
    ) -> AsyncIterator[generation_pb2.GenerateResponse]:
        arrival = time.monotonic()
        try:
            prepared = await self.prepare(request, in_session=False)
        except errors.ServiceError as error:
            rejected(error, rpc="Generate")
            await errors.abort(context, error)
        request_id = prepared.engine_request.request_id
        with structlog.contextvars.bound_contextvars(
            request_id=request_id, rpc="Generate", peer=context.peer()
        ):
            try:
                responses = self.responses(prepared, arrival, generation_pb2.GenerateResponse)
                async with contextlib.aclosing(responses):
                    async for response in responses:
                        yield response
            except Exception as error:
                log_failure(error, rpc="Generate")
                await errors.abort(context, error)

    async def responses(
        self, prepared: PreparedGeneration, arrival: float, response_type: type[ResponseT]
    ) -> AsyncGenerator[ResponseT, None]:
        """One generation's events as ``response_type`` messages (Generate's or Session's)."""
        request_id = prepared.engine_request.request_id
        model = self.runtime.engine.info.model_name
        log.info("generation_started", prompt_tokens=len(prepared.engine_request.prompt_token_ids))
        async with contextlib.aclosing(self.runtime.runner.run(prepared, arrival)) as events:
            async for event in events:
                response = response_type(request_id=request_id)
                fill(response, event, prepared, model)
                if isinstance(event, Finished):
                    _log_finished(event)
                yield response

    async def Session(
        self, request_iterator: AsyncIterator[generation_pb2.SessionRequest], context: SessionContext
    ) -> AsyncIterator[generation_pb2.SessionResponse]:
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
            rejected(error, rpc="Abort")
            await errors.abort(context, error)
        cancelled = self.runtime.registry.cancel(request_id, CancelCause.CANCELLED)
        log.info("abort", request_id=request_id, cancelled=cancelled)
        return generation_pb2.AbortResponse(cancelled=cancelled)


_END = None


class _Session:
    """One Session stream: a reader task, one task per generation, one outbox.

    The outbox is small and bounded: when the client reads slowly, generation
    tasks wait to put their next event, and meanwhile each generation's
    pending tokens coalesce in the engine instead of queueing here.
    """

    OUTBOX_SIZE = 16

    def __init__(self, servicer: GenerationServicer, peer: str) -> None:
        self._servicer = servicer
        self._runtime = servicer.runtime
        self._peer = peer
        self._outbox: asyncio.Queue[generation_pb2.SessionResponse | None] = asyncio.Queue(self.OUTBOX_SIZE)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def responses(
        self, requests: AsyncIterator[generation_pb2.SessionRequest]
    ) -> AsyncGenerator[generation_pb2.SessionResponse, None]:
        with structlog.contextvars.bound_contextvars(rpc="Session", peer=self._peer):
            reader = asyncio.create_task(self._read(requests))
            try:
                while (response := await self._outbox.get()) is not _END:
                    yield response
                await reader  # re-raises a failure of the request stream
            finally:
                reader.cancel()
                for task in self._tasks.values():
                    task.cancel()
                await asyncio.gather(reader, *self._tasks.values(), return_exceptions=True)

    async def _send_error(self, request_id: str, error: BaseException) -> None:
        status = errors.to_rpc_status(errors.from_exception(error))
        await self._outbox.put(generation_pb2.SessionResponse(request_id=request_id, error=status))

    async def _read(self, requests: AsyncIterator[generation_pb2.SessionRequest]) -> None:
        try:
            async for message in requests:
                match message.WhichOneof("action"):
                    case "start":
                        await self._start(message.start)
                    case "cancel":
                        request_id = message.cancel.request_id
                        if request_id in self._tasks:
                            self._runtime.registry.cancel(request_id, CancelCause.CANCELLED)
                    case _:
                        violation = errors.FieldViolation("action", "set one of start or cancel")
                        await self._send_error("", errors.InvalidArgument([violation]))
            # Half-close: no more requests; let the running generations finish.
            while self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        finally:
            await self._outbox.put(_END)

    async def _start(self, request: generation_pb2.GenerateRequest) -> None:
        arrival = time.monotonic()
        try:
            # Checked first, alone, so that a bad id is never echoed back or logged.
            request_id = request_id_of(request.request_id, required=True)
        except errors.ServiceError as error:
            rejected(error, rpc="Session")
            await self._send_error("", error)
            return
        if request_id in self._tasks:
            duplicate = errors.AlreadyExists(f"request_id {request_id!r} is already in flight on this stream")
            rejected(duplicate, rpc="Session")
            await self._send_error(request_id, duplicate)
            return
        try:
            prepared = await self._servicer.prepare(request, in_session=True)
        except errors.ServiceError as error:
            rejected(error, rpc="Session")
            await self._send_error(request_id, error)
            return
        task = asyncio.create_task(self._run(prepared, arrival))
        self._tasks[request_id] = task
        task.add_done_callback(lambda done: self._forget(request_id, done))

    def _forget(self, request_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(request_id) is task:
            del self._tasks[request_id]

    async def _run(self, prepared: PreparedGeneration, arrival: float) -> None:
        request_id: RequestId = prepared.engine_request.request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            responses = self._servicer.responses(prepared, arrival, generation_pb2.SessionResponse)
            async with contextlib.aclosing(responses):
                async for response in responses:
                    await self._outbox.put(response)
        except Exception as error:
            log_failure(error, rpc="Session")
            await self._send_error(request_id, error)
