"""The asyncio client: ``AsyncClient``, its Generate streams, and Sessions."""

# ``timeout`` parameters are the gRPC deadline of the call they make (passed to
# grpc, bounding retries too), not a wrapper that asyncio.timeout would replace.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar, Unpack

import grpc
from grpc import aio

from tokenwire.client.errors import (
    CallCancelledError,
    DeadlineExceededError,
    ProtocolError,
    TokenwireError,
    error_from_rpc,
    error_from_status,
)
from tokenwire.client.events import (
    Completion,
    CompletionBuilder,
    Event,
    Finished,
    Load,
    ModelInfo,
    Started,
    Tokenization,
    event_from_proto,
    model_info_from_proto,
)
from tokenwire.client.options import (
    ChatMessage,
    GenerateOptions,
    Prompt,
    RetryPolicy,
    TlsOptions,
    bearer_metadata,
    build_request,
)
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET
"""Default of every ``timeout`` argument: use the client's ``default_timeout``."""

Timeout = float | None | _Unset
"""Seconds for the call's gRPC deadline; None for no deadline; UNSET for the client's default."""

DEFAULT_TIMEOUT_S = 120.0


class AsyncClient:
    """A typed asyncio client for a tokenwire server.

    ``target`` is a gRPC target (``host:port``). Without ``tls`` the channel is
    plaintext; ``TlsOptions()`` verifies the server with the system roots,
    ``TlsOptions.from_files(ca, cert, key)`` with a CA file and a client
    certificate (mTLS). ``token`` is sent as ``authorization: Bearer <token>``
    with every call, unary and streaming. ``default_timeout`` (seconds, None for none) is the deadline of
    every call that passes no ``timeout``: unary calls, and each Generate
    stream as a whole (retries included); Sessions have no default deadline.
    ``retry`` governs retries of UNAVAILABLE and RESOURCE_EXHAUSTED (see
    ``RetryPolicy``). ``metadata`` is sent with every call (e.g. an
    authorization header).

    Use it as ``async with AsyncClient(...) as client:``, or call ``close()``.
    The channel opens on first use, on the running event loop; use a client on
    one loop only.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: TlsOptions | None = None,
        default_timeout: float | None = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel_options: Sequence[tuple[str, str | int]] = (),
        token: str | None = None,
    ) -> None:
        if token is not None and any(key.lower() == "authorization" for key, _ in metadata):
            raise ValueError("give a token or an authorization metadata entry, not both")
        self.target = target
        self.tls = tls
        self.default_timeout = default_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._metadata = (*metadata, bearer_metadata(token)) if token is not None else tuple(metadata)
        self._channel_options = list(channel_options)
        self._channel: aio.Channel | None = None
        self._generation: generation_pb2_grpc.GenerationServiceAsyncStub | None = None
        self._model: model_pb2_grpc.ModelServiceAsyncStub | None = None
        self._rng = random.Random()

    # --- lifecycle -------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._channel is not None:
            return
        if self.tls is None:
            self._channel = aio.insecure_channel(self.target, options=self._channel_options)
        else:
            options: list[tuple[str, str | int]] = [*self._channel_options, *self.tls.channel_options()]
            self._channel = aio.secure_channel(self.target, self.tls.credentials(), options=options)
        self._generation = generation_pb2_grpc.GenerationServiceStub(self._channel)
        self._model = model_pb2_grpc.ModelServiceStub(self._channel)

    @property
    def _gen_stub(self) -> generation_pb2_grpc.GenerationServiceAsyncStub:
        self._open()
        assert self._generation is not None
        return self._generation

    @property
    def _model_stub(self) -> model_pb2_grpc.ModelServiceAsyncStub:
        self._open()
        assert self._model is not None
        return self._model

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            self._generation = self._model = None
            await channel.close()

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Wait until the channel is connected (not that the model is loaded: see ``model_info``)."""
        self._open()
        assert self._channel is not None
        await asyncio.wait_for(self._channel.channel_ready(), timeout)

    # --- deadlines and retries ------------------------------------------------------------------

    def _deadline(self, timeout: Timeout) -> float | None:
        seconds = self.default_timeout if isinstance(timeout, _Unset) else timeout
        return None if seconds is None else asyncio.get_running_loop().time() + seconds

    @staticmethod
    def _remaining(deadline: float | None, request_id: str | None = None) -> float | None:
        if deadline is None:
            return None
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise DeadlineExceededError(
                grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call", request_id=request_id
            )
        return left

    async def _backoff(
        self, attempt: int, error: TokenwireError, deadline: float | None, policy: RetryPolicy | None = None
    ) -> bool:
        """Sleep before the next attempt and return True, or return False when ``error`` is final.

        ``policy``: the call's own retry policy; None: the client's."""
        delay = (policy or self.retry).delay_s(attempt, error, self._rng)
        if delay is None:
            return False
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def _unary(
        self,
        method: aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        timeout: Timeout,
        retry: RetryPolicy | None = None,
    ) -> ResponseT:
        deadline = self._deadline(timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(request, timeout=self._remaining(deadline), metadata=self._metadata)
            except aio.AioRpcError as rpc_error:
                error = error_from_rpc(rpc_error)
                if not await self._backoff(attempt, error, deadline, retry):
                    raise error from rpc_error

    # --- GenerationService ----------------------------------------------------------------------

    def generate(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        metadata: Sequence[tuple[str, str]] = (),
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> GenerateStream:
        """Stream one generation: ``async for event in client.generate(...)``.

        ``metadata`` goes with this call only, after the client's own: e.g. the
        caller's W3C ``traceparent``, which the server's span then continues
        (``opentelemetry.propagate.inject`` fills a dict with it).

        Yields one ``Started``, ``Delta`` events, then one ``Finished`` (one per sample with
        ``n`` > 1, each event carrying its ``sample_index``); raises a
        ``TokenwireError`` subclass if the call fails. ``timeout`` is the gRPC
        deadline of the whole stream (failing it with ``DeadlineExceededError``);
        ``time_limit_s`` is the server-side limit that keeps partial output.
        Leaving the loop early (or ``await stream.cancel()``, or ``async with``)
        cancels the call and frees the engine slot. ``retry`` overrides the client's
        ``RetryPolicy`` for this call (``RetryPolicy.disabled()``: no retries).
        """
        request = build_request(prompt, request_id, options)
        return GenerateStream(self, request, self._deadline(timeout), (*self._metadata, *metadata), retry)

    async def complete(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> Completion:
        """Run one generation to its end and return the whole ``Completion``."""
        async with self.generate(
            prompt, request_id=request_id, timeout=timeout, retry=retry, **options
        ) as stream:
            return await stream.collect()

    async def complete_samples(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> tuple[Completion, ...]:
        """Run one generation of ``n`` samples to its end: one ``Completion`` per sample, by index."""
        async with self.generate(
            prompt, request_id=request_id, timeout=timeout, retry=retry, **options
        ) as stream:
            return await stream.collect_samples()

    def session(self, *, timeout: float | None = None) -> Session:
        """A Session stream multiplexing many generations: ``async with client.session() as session:``.

        ``timeout`` (seconds) is the deadline of the whole stream; none by default.
        """
        return Session(self, timeout)

    async def abort(
        self, request_id: str, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None
    ) -> bool:
        """Cancel the generation ``request_id`` wherever it runs; True if one was in flight."""
        response = await self._unary(
            self._gen_stub.Abort, generation_pb2.AbortRequest(request_id=request_id), timeout, retry
        )
        return response.cancelled

    # --- ModelService ---------------------------------------------------------------------------

    async def model_info(self, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None) -> ModelInfo:
        response = await self._unary(
            self._model_stub.GetModelInfo, model_pb2.GetModelInfoRequest(), timeout, retry
        )
        return model_info_from_proto(response)

    async def load(self, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None) -> Load:
        response = await self._unary(self._model_stub.GetLoad, model_pb2.GetLoadRequest(), timeout, retry)
        return Load(response.active_requests, response.waiting_requests, response.in_flight_requests)

    async def tokenize(
        self,
        prompt: str | Sequence[ChatMessage],
        *,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
    ) -> Tokenization:
        """Tokenize text, or a conversation rendered with the chat template, as a generation would."""
        request = model_pb2.TokenizeRequest()
        if isinstance(prompt, str):
            request.text = prompt
        else:
            request.chat.messages.extend(
                generation_pb2.ChatMessage(role=m.role, content=m.content) for m in prompt
            )
            request.chat.SetInParent()
        response = await self._unary(self._model_stub.Tokenize, request, timeout, retry)
        return Tokenization(tuple(response.token_ids), response.rendered_prompt)

    async def detokenize(
        self,
        token_ids: Sequence[int],
        *,
        keep_special_tokens: bool = False,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
    ) -> str:
        request = model_pb2.DetokenizeRequest(token_ids=token_ids, keep_special_tokens=keep_special_tokens)
        response = await self._unary(self._model_stub.Detokenize, request, timeout, retry)
        return response.text


class GenerateStream:
    """The events of one Generate call; an async iterator and an async context manager.

    Retries (per the client's ``RetryPolicy``) happen only before the first
    event arrives, so a consumer never sees an event twice.
    """

    def __init__(
        self,
        client: AsyncClient,
        request: generation_pb2.GenerateRequest,
        deadline: float | None,
        metadata: tuple[tuple[str, str], ...] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._retry = retry
        self._request = request
        self._metadata = client.metadata if metadata is None else metadata
        self._deadline = deadline
        self._call: (
            aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse] | None
        ) = None
        self._attempts = 0
        self._received = False
        self._done = False
        self._request_id: str | None = request.request_id or None
        self._builder = CompletionBuilder(request.n or 1)

    @property
    def request_id(self) -> str | None:
        """The generation's id: the caller's, or the server's once ``Started`` arrived."""
        return self._request_id

    @property
    def attempts(self) -> int:
        """How many calls were made (1 unless retried)."""
        return self._attempts

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._done:
                raise StopAsyncIteration
            if self._call is None:
                self._attempts += 1
                timeout = self._client._remaining(self._deadline, self._request_id)
                self._call = self._client._gen_stub.Generate(
                    self._request, timeout=timeout, metadata=self._metadata
                )
            try:
                response = await self._call.read()
            except aio.AioRpcError as rpc_error:
                self._call = None
                error = error_from_rpc(rpc_error, request_id=self._request_id)
                if not self._received and await self._client._backoff(
                    self._attempts, error, self._deadline, self._retry
                ):
                    continue
                self._done = True
                raise error from rpc_error
            if not isinstance(response, generation_pb2.GenerateResponse):  # EOF
                self._done = True
                self._call = None
                if not self._builder.complete:
                    builder = self._builder
                    raise ProtocolError(
                        f"Generate stream ended after {builder.finished_count} finished events "
                        f"of {builder.samples}",
                        request_id=self._request_id,
                    )
                raise StopAsyncIteration
            self._received = True
            self._request_id = response.request_id or self._request_id
            event = event_from_proto(response.request_id, response)
            if event is None:
                continue
            self._builder.add(event)
            return event

    async def collect(self) -> Completion:
        """Read the rest of the stream; the ``Completion`` of all its events (those already read too).
        For a request with ``n`` > 1 use ``collect_samples``."""
        async for _ in self:
            pass
        return self._builder.build()

    async def collect_samples(self) -> tuple[Completion, ...]:
        """Read the rest of the stream; one ``Completion`` per sample, by ``sample_index``."""
        async for _ in self:
            pass
        return self._builder.build_samples()

    async def cancel(self) -> None:
        """Cancel the call (the server cancels the generation and frees its slot)."""
        self.cancel_nowait()

    def cancel_nowait(self) -> None:
        """``cancel`` without awaiting; call it on the client's event loop."""
        self._done = True
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.cancel()

    def __del__(self) -> None:
        # A consumer that breaks out of ``async for`` drops the stream: cancel the call at once
        # rather than when gRPC's own call object is garbage-collected (it sits in cycles).
        call = getattr(self, "_call", None)
        if call is not None and not self._done:
            with contextlib.suppress(Exception):  # e.g. the event loop is already closed
                call.cancel()


_SessionCall = aio.StreamStreamCall[generation_pb2.SessionRequest, generation_pb2.SessionResponse]
_Item = generation_pb2.SessionResponse | TokenwireError


class Session:
    """Many generations multiplexed on one Session stream.

    ``handle = await session.start(request_id, prompt, ...)`` starts one; each
    handle is an async iterator of its own events, raising a
    ``TokenwireError`` (with ``request_id`` and the ``google.rpc.Status``
    details) if its generation fails; the other generations go on. A start
    that fails with a retryable code before it started is re-sent per the
    client's ``RetryPolicy``.

    Leaving ``async with`` normally half-closes the stream and waits for the
    generations in flight to finish (their events stay readable from their
    handles); leaving it with an exception, or ``await session.cancel()``,
    cancels the stream and every generation on it.
    """

    def __init__(self, client: AsyncClient, timeout: float | None) -> None:
        self._client = client
        self._timeout = timeout
        self._deadline: float | None = None
        self._call: _SessionCall | None = None
        self._reader: asyncio.Task[None] | None = None
        self._handles: dict[str, GenerationHandle] = {}
        self._write_lock = asyncio.Lock()
        self._writing_closed = False
        self._failure: Callable[[str | None], TokenwireError] | None = None

    async def __aenter__(self) -> Self:
        self._ensure_open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            await self.close()
        else:
            await self.cancel()

    def _ensure_open(self) -> _SessionCall:
        if self._call is None:
            if self._timeout is not None:
                self._deadline = asyncio.get_running_loop().time() + self._timeout
            self._call = self._client._gen_stub.Session(timeout=self._timeout, metadata=self._client.metadata)
            self._reader = asyncio.create_task(self._read_loop(self._call), name="tokenwire-session-reader")
        return self._call

    async def _write(self, message: generation_pb2.SessionRequest) -> None:
        call = self._ensure_open()
        async with self._write_lock:
            try:
                await call.write(message)
            except aio.AioRpcError as rpc_error:
                raise error_from_rpc(rpc_error) from rpc_error
            except asyncio.InvalidStateError as finished:  # the stream already ended
                if self._reader is not None:
                    await asyncio.wait([self._reader])
                if self._failure is not None:
                    raise self._failure(None) from finished
                raise RuntimeError("the Session stream has ended") from finished

    async def _read_loop(self, call: _SessionCall) -> None:
        failure: Callable[[str | None], TokenwireError] = lambda rid: ProtocolError(  # noqa: E731
            "the Session stream ended before this generation finished", request_id=rid
        )
        failed = True
        try:
            while isinstance(response := await call.read(), generation_pb2.SessionResponse):
                handle = self._handles.get(response.request_id)
                if handle is None:
                    continue  # an id this session does not track (already finished): ignore
                if response.WhichOneof("event") in ("finished", "error"):
                    del self._handles[response.request_id]
                handle._queue.put_nowait(response)
            failed = False
        except aio.AioRpcError as rpc_error:
            failed_call = rpc_error
            failure = lambda rid: error_from_rpc(failed_call, request_id=rid)  # noqa: E731
        except asyncio.CancelledError:
            failure = lambda rid: CallCancelledError(  # noqa: E731
                grpc.StatusCode.CANCELLED, "the session was cancelled", request_id=rid
            )
        finally:
            if failed:
                self._failure = failure
            self._writing_closed = True
            handles, self._handles = self._handles, {}
            for handle in handles.values():
                handle._queue.put_nowait(failure(handle.request_id))

    async def start(
        self,
        request_id: str,
        prompt: Prompt,
        *,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> GenerationHandle:
        """Start a generation with a caller-chosen ``request_id``, unique among this session's live ones.

        ``retry`` overrides the client's ``RetryPolicy`` for re-sending this start."""
        if not request_id:
            raise ValueError("a Session generation needs a request_id")
        handle = GenerationHandle(self, build_request(prompt, request_id, options), retry)
        await self._send_start(handle)
        return handle

    async def _send_start(self, handle: GenerationHandle) -> None:
        if self._failure is not None:
            raise self._failure(handle.request_id)
        if self._writing_closed:
            raise RuntimeError("this session is closed for new generations")
        if handle.request_id in self._handles:
            raise ValueError(f"request id {handle.request_id!r} is already running on this session")
        self._handles[handle.request_id] = handle
        try:
            await self._write(generation_pb2.SessionRequest(start=handle._request))
        except BaseException:
            self._handles.pop(handle.request_id, None)
            raise

    async def _send_cancel(self, request_id: str) -> None:
        if self._writing_closed:
            await self._client.abort(request_id)  # cancel works from any connection
            return
        await self._write(
            generation_pb2.SessionRequest(cancel=generation_pb2.SessionCancel(request_id=request_id))
        )

    async def close(self) -> None:
        """Half-close: no more starts; wait until the generations in flight finished and the stream ended."""
        if self._call is None:
            return
        if not self._writing_closed:
            self._writing_closed = True
            async with self._write_lock:
                with contextlib.suppress(aio.AioRpcError):
                    await self._call.done_writing()
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def cancel(self) -> None:
        """Cancel the stream and every generation on it (their handles raise ``CallCancelledError``)."""
        if self._call is None:
            return
        self._writing_closed = True
        self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class GenerationHandle:
    """One generation of a Session: iterate its events, ``cancel()`` it, or await its ``result()``."""

    def __init__(
        self, session: Session, request: generation_pb2.GenerateRequest, retry: RetryPolicy | None = None
    ) -> None:
        self._session = session
        self._retry_policy = retry
        self._request = request
        self.request_id: str = request.request_id
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._started = False
        self._done = False
        self._attempts = 1
        self._cancel_requested = False
        self._builder = CompletionBuilder(request.n or 1)

    @property
    def attempts(self) -> int:
        return self._attempts

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._done:
                raise StopAsyncIteration
            item = await self._queue.get()
            if isinstance(item, TokenwireError):
                self._done = True
                raise item
            if item.WhichOneof("event") == "error":
                error = error_from_status(item.error, request_id=self.request_id)
                if await self._retry(error):
                    continue
                self._done = True
                raise error
            event = event_from_proto(self.request_id, item)
            if event is None:
                continue
            if isinstance(event, Started):
                self._started = True
            self._builder.add(event)
            if isinstance(event, Finished) and self._builder.complete:
                self._done = True
            return event

    async def _retry(self, error: TokenwireError) -> bool:
        session = self._session
        if self._started or self._cancel_requested:
            return False
        if not await session._client._backoff(self._attempts, error, session._deadline, self._retry_policy):
            return False
        if self._cancel_requested:
            return False
        try:
            await session._send_start(self)
        except (TokenwireError, RuntimeError, ValueError):
            return False
        self._attempts += 1
        return True

    async def cancel(self) -> None:
        """Cancel this generation; its stream ends with ``Finished(reason=CANCELLED)``."""
        self._cancel_requested = True
        if not self._done:
            await self._session._send_cancel(self.request_id)

    async def result(self) -> Completion:
        """Read the rest of this generation; the ``Completion`` of all its events (those already read too)."""
        async for _ in self:
            pass
        return self._builder.build()

    async def results(self) -> tuple[Completion, ...]:
        """Read the rest of this generation; one ``Completion`` per sample (``n`` > 1), by index."""
        async for _ in self:
            pass
        return self._builder.build_samples()
