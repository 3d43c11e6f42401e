"""``TrtLlmEngine``: ``tensorrt_llm.LLM`` (PyTorch backend, 1.x LLM API) behind the ``Engine`` Protocol.

TensorRT-LLM already runs its executor off the event loop and hands each
streaming step to an asyncio queue bound to the loop that called
``generate_async`` (``GenerationResult.__anext__`` in
``tensorrt_llm/executor/result.py``). So a request's stream simply awaits the
next step and converts it; every way a stream can end early (the consumer
closes or drops it, ``cancel``, ``shutdown``) calls ``result.abort()`` so the
executor frees the request's slot at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import structlog

from engines.contract import (
    EngineError,
    EngineInfo,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    InvalidStructuredOutput,
    RequestId,
    StructuredOutput,
)
from engines.output_stream import ClosingOutputStream
from engines.structured import CheckedFormats
from engines.trtllm import capabilities, guided
from engines.trtllm.llm_build import TrtLlmConfigError, TrtLlmModules, import_tensorrt_llm, llm_kwargs
from engines.trtllm.requests import CompletionView, OutputTracker, embedding_bias, sampling_kwargs
from engines.trtllm.settings import TrtLlmSettings
from engines.trtllm.tokenizer import TrtLlmTokenizer, load_tokenizer
from engines.trtllm.versions import PINNED_VERSION, Release, release_for, release_named

_log = structlog.get_logger(__name__)

TRTLLM_DEFAULT_MAX_BATCH_SIZE = 2048
"""What TensorRT-LLM uses when no max_batch_size is given (BuildConfig's default)."""


class GenerationResult(Protocol):
    """What we use of ``tensorrt_llm.llmapi.RequestOutput`` (a ``GenerationResult``)."""

    @property
    def outputs(self) -> Sequence[CompletionView]: ...

    @property
    def finished(self) -> bool: ...

    def abort(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[object]: ...


class Llm(Protocol):
    """What we use of ``tensorrt_llm.LLM``."""

    def generate_async(
        self, inputs: Mapping[str, object], sampling_params: object, *, streaming: bool
    ) -> GenerationResult: ...

    def shutdown(self) -> None: ...


class _Flight:
    """One submitted request: its TensorRT-LLM result and how far we have read it."""

    __slots__ = ("aborted", "loop", "request_id", "result", "step", "stopped", "tracker")

    def __init__(self, request_id: RequestId, result: GenerationResult, tracker: OutputTracker) -> None:
        self.request_id = request_id
        self.result = result
        self.tracker = tracker
        self.loop = asyncio.get_running_loop()
        self.aborted = False
        self.stopped = False
        """The engine shut down: the stream ends CANCELLED without waiting for TensorRT-LLM."""
        self.step: asyncio.Future[object] | None = None

    def abort(self) -> None:
        """Cancel the request in TensorRT-LLM (once; never after it finished by itself)."""
        if self.aborted or self.result.finished:
            return
        self.aborted = True
        try:
            self.result.abort()
        except Exception:  # the executor may already be gone; the request is over either way
            _log.warning("trtllm_abort_failed", request_id=self.request_id, exc_info=True)

    def stop(self) -> None:
        """On shutdown: abort, and wake the stream even if TensorRT-LLM never answers again."""
        self.abort()
        self.stopped = True
        if self.step is not None:
            self.loop.call_soon_threadsafe(self.step.cancel)


class TrtLlmEngine:
    """Implements ``engines.contract.Engine`` with an in-process ``tensorrt_llm.LLM``."""

    def __init__(self, settings: TrtLlmSettings, *, max_batch_size: int | None = None) -> None:
        """``settings``: the validated start-up value; ``max_batch_size``: used (and passed to
        TensorRT-LLM) only when ``settings.llm_args`` has none."""
        self._settings = settings
        self._release: Release = settings.release or release_named(PINNED_VERSION)
        self._draft_length = capabilities.draft_length(settings.llm_args)
        self._unsupported = capabilities.unsupported_fields(settings.llm_args, self._release)
        self._greedy_only = any(
            item.field == "sampling.temperature" and item.allowed == 0.0 for item in self._unsupported
        )
        self._max_batch_size = max_batch_size
        self._modules: TrtLlmModules | None = None
        self._llm: Llm | None = None
        self._tokenizer: TrtLlmTokenizer | None = None
        self._info: EngineInfo | None = None
        self._flights: dict[RequestId, _Flight] = {}
        self._guided_backend = guided.backend_of(settings.llm_args)
        self._checked = CheckedFormats()

    @property
    def info(self) -> EngineInfo:
        """Model and engine facts; valid after ``start``."""
        if self._info is None:
            raise RuntimeError("TrtLlmEngine.start() has not finished")
        return self._info

    @property
    def tokenizer(self) -> TrtLlmTokenizer:
        """The model's Hugging Face tokenizer; valid after ``start``."""
        if self._tokenizer is None:
            raise RuntimeError("TrtLlmEngine.start() has not finished")
        return self._tokenizer

    async def start(self) -> None:
        """Import TensorRT-LLM and build the ``LLM`` (loads weights, captures CUDA graphs: minutes)."""
        await asyncio.to_thread(self._build)

    def _build(self) -> None:
        settings = self._settings
        modules = import_tensorrt_llm(settings)  # applies settings.env first
        self._check_version(modules)
        args = dict(settings.llm_args)
        if "max_batch_size" not in args and self._max_batch_size is not None:
            args["max_batch_size"] = self._max_batch_size
        kwargs = llm_kwargs(args, modules.llmapi)
        _log.info("trtllm_building", model=settings.model, preset=settings.preset)
        llm: Llm = modules.tensorrt_llm.LLM(**kwargs)
        tokenizer_source = args.get("tokenizer")
        tokenizer = load_tokenizer(
            tokenizer_source if isinstance(tokenizer_source, str) else settings.model,
            trust_remote_code=args.get("trust_remote_code") is True,
        )
        self._modules, self._llm, self._tokenizer = modules, llm, tokenizer
        self._info = EngineInfo(
            model_name=_model_name(settings.model),
            engine_name="trtllm",
            context_length=_context_length(args, llm, settings.model),
            vocab_size=tokenizer.vocab_size,
            max_batch_size=_positive_int(args.get("max_batch_size"))
            or _positive_int(getattr(getattr(llm, "args", None), "max_batch_size", None))
            or TRTLLM_DEFAULT_MAX_BATCH_SIZE,
            speculative=capabilities.speculative_config(args),
            unsupported_fields=self._unsupported,
            structured_output_kinds=guided.kinds_for(settings.llm_args),
        )
        _log.info(
            "trtllm_engine_started",
            context_length=self._info.context_length,
            version=str(self._release.version),
            refused_fields=[item.field for item in self._info.unsupported_fields],
        )

    def _check_version(self, modules: TrtLlmModules) -> None:
        """The imported TensorRT-LLM must be of the release the settings were validated for."""
        found = getattr(modules.tensorrt_llm, "__version__", None)
        if not isinstance(found, str):
            raise TrtLlmConfigError("tensorrt_llm has no __version__: cannot tell which release this is")
        running = release_for(found)
        if running.line != self._release.line:
            raise TrtLlmConfigError(
                f"the settings were checked against {self._release.name} ({self._release.line} line) "
                f"but tensorrt_llm {found} is imported"
            )

    async def shutdown(self) -> None:
        """Abort every request (their streams end CANCELLED), then shut the executor down."""
        for flight in list(self._flights.values()):
            flight.stop()
        llm, self._llm = self._llm, None
        if llm is not None:
            await asyncio.to_thread(llm.shutdown)

    def generate(self, request: EngineRequest) -> AsyncGenerator[EngineOutput, None]:
        """Submit ``request`` to TensorRT-LLM now and return its output stream.

        Must be called on the event loop that will iterate the stream (TensorRT-LLM
        binds the result's queue to the running loop).
        """
        llm, modules, tokenizer = self._llm, self._modules, self._tokenizer
        if llm is None or modules is None or tokenizer is None:
            raise RuntimeError("TrtLlmEngine.start() has not finished (or shut down)")
        if not request.prompt_token_ids:
            raise ValueError("the prompt must hold at least one token")
        if request.request_id in self._flights:
            raise EngineError(f"request id {request.request_id!r} is already in flight")
        end_id = tokenizer.end_id
        other_eos = tokenizer.eos_token_ids - ({end_id} if end_id is not None else set())
        try:
            kwargs = sampling_kwargs(
                request, end_id=end_id, other_eos=other_eos, greedy_only=self._greedy_only
            )
            if request.sampling.logit_bias:
                kwargs["embedding_bias"] = embedding_bias(request.sampling.logit_bias, tokenizer.vocab_size)
            spec = request.structured_output
            if spec is not None:
                if self._guided_backend is None:
                    raise InvalidStructuredOutput("this configuration has no guided_decoding_backend")
                kwargs["guided_decoding"] = modules.llmapi.GuidedDecodingParams(
                    **guided.guided_kwargs(spec, self._guided_backend)
                )
            params = modules.tensorrt_llm.SamplingParams(**kwargs)
            # A TokensPrompt: what tensorrt_llm.inputs.prompt_inputs makes of a list of ids.
            result = llm.generate_async(
                {"prompt_token_ids": list(request.prompt_token_ids)}, params, streaming=True
            )
        except Exception as error:
            raise EngineError(f"TensorRT-LLM refused the request: {error}") from error
        tracker = OutputTracker(request, tokenizer.eos_token_ids, draft_length=self._draft_length)
        flight = _Flight(request.request_id, result, tracker)
        self._flights[request.request_id] = flight
        return _OutputStream(self, flight)

    def compile_structured_output(self, spec: StructuredOutput) -> None:
        """Check ``spec`` with llguidance (TensorRT-LLM compiles it itself, per request, in its
        executor, where a bad format would fail the request late); raises ``InvalidStructuredOutput``."""
        if self._guided_backend is None:
            raise InvalidStructuredOutput("this configuration has no guided_decoding_backend")
        guided.guided_kwargs(spec, self._guided_backend)  # refuses a kind the backend does not follow
        self._checked.check(spec)

    def cancel(self, request_id: RequestId) -> None:
        """Abort a request in TensorRT-LLM; its stream then ends CANCELLED. Never blocks."""
        flight = self._flights.get(request_id)
        if flight is not None:
            flight.abort()

    def load(self) -> EngineLoad:
        """Requests in flight; those beyond the batch size are counted as waiting.

        TensorRT-LLM does not report per-request scheduling state cheaply, so this
        is an estimate from the batch size.
        """
        in_flight = len(self._flights)
        batch = self._info.max_batch_size if self._info is not None else in_flight
        return EngineLoad(active_requests=min(in_flight, batch), waiting_requests=max(0, in_flight - batch))

    def _forget(self, flight: _Flight) -> None:
        if self._flights.get(flight.request_id) is flight:
            del self._flights[flight.request_id]


class _OutputStream(ClosingOutputStream):
    """One request's outputs. Closing it, or dropping it, unfinished aborts the request."""

    def __init__(self, engine: TrtLlmEngine, flight: _Flight) -> None:
        self._engine = engine
        self._flight = flight
        super().__init__()

    async def _outputs(self) -> AsyncGenerator[EngineOutput, None]:
        flight = self._flight
        try:
            steps = flight.result.__aiter__()
            while not flight.tracker.finished:
                if flight.stopped:
                    self._close()
                    yield flight.tracker.cancelled()
                    return
                try:
                    await self._next_step(steps)
                except StopAsyncIteration:
                    raise EngineError("TensorRT-LLM ended a request without a finish reason") from None
                except asyncio.CancelledError:
                    if flight.stopped and not _being_cancelled():
                        continue  # shutdown woke us: the loop head ends the stream
                    raise
                except EngineError:
                    raise
                except Exception as error:  # an executor error fails this request only
                    raise EngineError(f"TensorRT-LLM failed the request: {error}") from error
                output = flight.tracker.update(
                    flight.result.outputs[0], decoding_iter=getattr(flight.result, "decoding_iter", None)
                )
                if output is None:
                    continue
                if output.finish_reason is not None:
                    self._close()  # free the slot before the caller reports the end
                yield output
        finally:
            self._close()

    async def _next_step(self, steps: AsyncIterator[object]) -> None:
        # A task of its own, so that shutdown can wake this stream without cancelling its reader.
        step: asyncio.Future[object] = asyncio.ensure_future(steps.__anext__())
        self._flight.step = step
        try:
            await step
        finally:
            self._flight.step = None

    def _close(self) -> None:
        """Idempotent: forget the request and, unless TensorRT-LLM finished it, abort it."""
        self._engine._forget(self._flight)
        self._flight.abort()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _model_name(model: str) -> str:
    path = Path(model)
    return path.name if path.is_dir() else model


def _context_length(args: Mapping[str, object], llm: object, model: str) -> int:
    """``max_seq_len`` as configured, as TensorRT-LLM settled it, or from the model's config.json."""
    found = _positive_int(args.get("max_seq_len")) or _positive_int(
        getattr(getattr(llm, "args", None), "max_seq_len", None)
    )
    if found is not None:
        return found
    config_path = Path(model) / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for section in (config, config.get("text_config") or {}):  # Llama 4 nests the text model
            if (length := _positive_int(section.get("max_position_embeddings"))) is not None:
                return length
    raise EngineError("cannot tell the context length: set llm_args.max_seq_len")
