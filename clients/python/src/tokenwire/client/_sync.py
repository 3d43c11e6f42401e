"""``Client``: a blocking wrapper around ``AsyncClient`` for scripts.

Design: each ``Client`` owns a private event loop running on a daemon thread
("tokenwire-client"); every method submits a coroutine to it with
``asyncio.run_coroutine_threadsafe`` and blocks on the result. The gRPC channel
lives on that loop for the client's whole life (so connections are reused
across calls, unlike ``asyncio.run`` per call), and the blocking calls work
from any thread, including inside a program that runs its own event loop on
the calling thread. Interrupting a blocking call (Ctrl-C) cancels the
underlying RPC. Call ``close()`` (or use ``with``) to stop the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Iterator, Sequence
from types import TracebackType
from typing import Self, TypeVar, Unpack

from tokenwire.client._async import (
    DEFAULT_TIMEOUT_S,
    UNSET,
    AsyncClient,
    GenerateStream,
    GenerationHandle,
    Session,
    Timeout,
)
from tokenwire.client.events import Completion, Event, Load, ModelInfo, Tokenization
from tokenwire.client.options import ChatMessage, GenerateOptions, Prompt, RetryPolicy, TlsOptions

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tokenwire-client", daemon=True)
        self.thread.start()

    def run(self, awaitable: Awaitable[T]) -> T:
        future = asyncio.run_coroutine_threadsafe(_wrap(awaitable), self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


async def _wrap(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _next_event(iterator: GenerateStream | GenerationHandle) -> Event | None:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None


class Client:
    """Blocking twin of ``AsyncClient`` (same arguments, same methods, no ``await``).

    ``with Client("127.0.0.1:50051") as client: print(client.complete("Hi", max_tokens=8).text)``
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
        # Built first: a bad token or TLS option raises before the loop's thread starts.
        self._async = AsyncClient(
            target,
            tls=tls,
            default_timeout=default_timeout,
            retry=retry,
            metadata=metadata,
            channel_options=channel_options,
            token=token,
        )
        self._loop = _Loop()
        self._closed = False

    @property
    def async_client(self) -> AsyncClient:
        """The underlying client (use it only on this client's loop)."""
        return self._async

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.run(self._async.close())
            self._loop.stop()

    def generate(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        metadata: Sequence[tuple[str, str]] = (),
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> SyncGenerateStream:
        """``for event in client.generate(...)``: see ``AsyncClient.generate``."""

        async def make() -> GenerateStream:
            return self._async.generate(
                prompt, request_id=request_id, timeout=timeout, metadata=metadata, retry=retry, **options
            )

        return SyncGenerateStream(self._loop, self._loop.run(make()))

    def complete(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> Completion:
        return self._loop.run(
            self._async.complete(prompt, request_id=request_id, timeout=timeout, retry=retry, **options)
        )

    def complete_samples(
        self,
        prompt: Prompt,
        *,
        request_id: str | None = None,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> tuple[Completion, ...]:
        """One ``Completion`` per sample of a request with ``n`` samples; see ``AsyncClient``."""
        return self._loop.run(
            self._async.complete_samples(
                prompt, request_id=request_id, timeout=timeout, retry=retry, **options
            )
        )

    def session(self, *, timeout: float | None = None) -> SyncSession:
        """``with client.session() as session:``: see ``AsyncClient.session``."""

        async def make() -> Session:
            return self._async.session(timeout=timeout)

        return SyncSession(self._loop, self._loop.run(make()))

    def abort(self, request_id: str, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None) -> bool:
        return self._loop.run(self._async.abort(request_id, timeout=timeout, retry=retry))

    def model_info(self, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None) -> ModelInfo:
        return self._loop.run(self._async.model_info(timeout=timeout, retry=retry))

    def load(self, *, timeout: Timeout = UNSET, retry: RetryPolicy | None = None) -> Load:
        return self._loop.run(self._async.load(timeout=timeout, retry=retry))

    def tokenize(
        self,
        prompt: str | Sequence[ChatMessage],
        *,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
    ) -> Tokenization:
        return self._loop.run(self._async.tokenize(prompt, timeout=timeout, retry=retry))

    def detokenize(
        self,
        token_ids: Sequence[int],
        *,
        keep_special_tokens: bool = False,
        timeout: Timeout = UNSET,
        retry: RetryPolicy | None = None,
    ) -> str:
        return self._loop.run(
            self._async.detokenize(
                token_ids, keep_special_tokens=keep_special_tokens, timeout=timeout, retry=retry
            )
        )


class SyncGenerateStream:
    """Blocking iterator over one Generate stream; ``with`` (or ``cancel()``) cancels the call."""

    def __init__(self, loop: _Loop, stream: GenerateStream) -> None:
        self._loop = loop
        self._stream = stream

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id

    def __iter__(self) -> Iterator[Event]:
        while (event := self._loop.run(_next_event(self._stream))) is not None:
            yield event

    def collect(self) -> Completion:
        return self._loop.run(self._stream.collect())

    def collect_samples(self) -> tuple[Completion, ...]:
        return self._loop.run(self._stream.collect_samples())

    def cancel(self) -> None:
        self._loop.run(self._stream.cancel())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()

    def __del__(self) -> None:
        # Dropped mid-stream (a ``for`` left early): cancel the call on the client's loop, which
        # also makes the async stream's last reference go away on that thread.
        stream = getattr(self, "_stream", None)
        if stream is not None:
            with contextlib.suppress(RuntimeError):  # the client (and its loop) is closed
                self._loop.loop.call_soon_threadsafe(stream.cancel_nowait)


class SyncGenerationHandle:
    """Blocking view of a Session generation: iterate it, ``cancel()`` it, or get its ``result()``."""

    def __init__(self, loop: _Loop, handle: GenerationHandle) -> None:
        self._loop = loop
        self._handle = handle
        self.request_id = handle.request_id

    def __iter__(self) -> Iterator[Event]:
        while (event := self._loop.run(_next_event(self._handle))) is not None:
            yield event

    def cancel(self) -> None:
        self._loop.run(self._handle.cancel())

    def result(self) -> Completion:
        return self._loop.run(self._handle.result())

    def results(self) -> tuple[Completion, ...]:
        return self._loop.run(self._handle.results())


class SyncSession:
    """Blocking view of a ``Session`` (events of every generation are buffered as they arrive)."""

    def __init__(self, loop: _Loop, session: Session) -> None:
        self._loop = loop
        self._session = session

    def __enter__(self) -> Self:
        self._loop.run(self._session.__aenter__())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.run(self._session.__aexit__(exc_type, exc, tb))

    def start(
        self,
        request_id: str,
        prompt: Prompt,
        *,
        retry: RetryPolicy | None = None,
        **options: Unpack[GenerateOptions],
    ) -> SyncGenerationHandle:
        return SyncGenerationHandle(
            self._loop, self._loop.run(self._session.start(request_id, prompt, retry=retry, **options))
        )

    def close(self) -> None:
        self._loop.run(self._session.close())

    def cancel(self) -> None:
        self._loop.run(self._session.cancel())
