"""A TEST DOUBLE of the ``tensorrt_llm`` package, used only because the real one cannot run here.

TensorRT-LLM needs an NVIDIA GPU and NVIDIA's own wheels; these tests run on
CPU-only machines. ``installed()`` puts this double on ``sys.meta_path`` so
that ``import tensorrt_llm`` / ``import tensorrt_llm.llmapi`` load it, and
records the environment as it was at import time.

It reproduces the documented behaviour the adapter relies on (sources are
NVIDIA/TensorRT-LLM files; ``sampling_params.py`` at b35ac1b6 = 1.2.0rc2, the
others as stored in the reference index, 1.x):

- ``LLM.generate_async(inputs, sampling_params, streaming=True)`` returns a
  result whose ``outputs[0]`` (a ``CompletionOutput``) is updated IN PLACE at
  each step when the consumer dequeues the step's response: ``token_ids``
  grows, ``token_ids_diff`` holds the step's tokens, ``logprobs`` is replaced
  by the cumulative list, ``finish_reason`` / ``stop_reason`` are set on the
  last step and a matched stop token is trimmed from ``token_ids``
  (executor/result.py ``GenerationResultBase._handle_sequence``);
  ``__anext__`` raises ``StopAsyncIteration`` once done (``GenerationResult.__anext__``).
- ``abort()`` asks the executor to cancel; the last response then arrives with
  ``finish_reason == 'cancelled'`` (``GenerationResult.abort``, ``_handle_sequence``).
- A per-request executor error surfaces as an exception from ``__anext__``
  (``_handle_response`` → background error handler → ``RequestError``).
- ``ignore_eos`` makes the executor request use ``end_id=-1``
  (executor/worker.py ``_enqueue_request``); the end token is not part of the
  output (TensorRT-LLM issue 2190: "generation will stop at the endId, but not
  include it"); ``min_tokens`` holds back only the end token.
- Each step yields 1 to 4 tokens when an EAGLE config is given (target token plus
  accepted drafts), from a deterministic script derived from the prompt.
- ``request_perf_metrics`` (with ``return_perf_metrics``) mirrors
  ``RequestPerfMetrics``: ``timing_metrics`` timedeltas, ``speculative_decoding``
  totals, ``first_iter`` / ``last_iter`` (tests/unittest/llmapi/test_llm.py
  ``test_llm_perf_metrics``).
- Config classes accept only the field names of the real ones and reject any
  other keyword, as the real strict pydantic models do, in the shape of the
  release ``installed(version=...)`` names: 1.2.1 (``eagle3_one_model``,
  ``allow_advanced_sampling``, ``speculative_model_dir``, ``acceptance_window``)
  or the 1.3 rcs (no ``eagle3_one_model``; ``speculative_model`` with the old
  name as an alias; ``acceptance_rate_*``; ``enable_penalty``). The package
  metadata reports that version too (``importlib.metadata``), as a wheel would.
- Streaming follows ``PyExecutor._handle_responses``: a response after the
  first iteration, every ``stream_interval``-th iteration and the last; the
  first (prompt) iteration yields one token, later ones 1 + accepted drafts;
  ``RequestOutput.decoding_iter`` counts the iterations so far. The
  speculative counters of ``request_perf_metrics`` stay zero, as on the
  PyTorch path before PR #17082.
- ``LLM.dropped`` records, per request, the fields the real release would
  have accepted and then ignored (TorchSampler's penalties and seed on 1.2.1;
  sampling under one-model EAGLE-3 without ``allow_advanced_sampling``, and
  top_p/min_p with it; min_p under EAGLE-3 on 1.3). A correct adapter never
  lets such a request through. On 1.3 a penalty under speculation without
  ``enable_penalty`` is refused at admission, as TensorRT-LLM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import pathlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace

# tensorrt_llm/sampling_params.py @ b35ac1b6, class SamplingParams (init fields).
SAMPLING_PARAMS_FIELDS: Mapping[str, object] = {
    "end_id": None, "pad_id": None, "max_tokens": 32, "bad": None, "bad_token_ids": None,
    "stop": None, "stop_token_ids": None, "include_stop_str_in_output": False,
    "embedding_bias": None, "logits_processor": None, "apply_batched_logits_processor": False,
    "n": 1, "best_of": None, "use_beam_search": False, "top_k": None, "top_p": None,
    "top_p_min": None, "top_p_reset_ids": None, "top_p_decay": None, "seed": None,
    "temperature": None, "min_tokens": None, "beam_search_diversity_rate": None,
    "repetition_penalty": None, "presence_penalty": None, "frequency_penalty": None,
    "prompt_ignore_length": None, "length_penalty": None, "early_stopping": None,
    "no_repeat_ngram_size": None, "min_p": None, "beam_width_array": None, "logprobs": None,
    "prompt_logprobs": None, "return_context_logits": False, "return_generation_logits": False,
    "exclude_input_from_output": True, "return_encoder_output": False,
    "return_perf_metrics": False, "additional_model_outputs": None, "lookahead_config": None,
    "guided_decoding": None, "ignore_eos": False, "detokenize": True, "add_special_tokens": True,
    "truncate_prompt_tokens": None, "skip_special_tokens": True,
    "spaces_between_special_tokens": True,
}  # fmt: skip

# tensorrt_llm/llmapi/llm_args.py (1.x): BaseLlmArgs and TorchLlmArgs fields.
LLM_ARGS_FIELDS = frozenset({
    "model", "tokenizer", "tokenizer_mode", "skip_tokenizer_init", "trust_remote_code",
    "tensor_parallel_size", "dtype", "revision", "tokenizer_revision", "pipeline_parallel_size",
    "context_parallel_size", "gpus_per_node", "moe_cluster_parallel_size",
    "moe_tensor_parallel_size", "moe_expert_parallel_size", "enable_attention_dp",
    "enable_lm_head_tp_in_adp", "cp_config", "load_format",
    "fail_fast_on_attention_window_too_large", "enable_lora", "lora_config", "kv_cache_config",
    "enable_chunked_prefill", "guided_decoding_backend", "batched_logits_processor",
    "iter_stats_max_iterations", "request_stats_max_iterations", "peft_cache_config",
    "scheduler_config", "cache_transceiver_config", "sparse_attention_config",
    "speculative_config", "max_batch_size", "max_input_len", "max_seq_len", "max_beam_width",
    "max_num_tokens", "gather_generation_logits", "num_postprocess_workers",
    "postprocess_tokenizer_dir", "reasoning_parser", "backend", "return_perf_metrics",
    "orchestrator_type", "garbage_collection_gen0_threshold", "cuda_graph_config",
    "attention_dp_config", "disable_overlap_scheduler", "moe_config", "attn_backend",
    "sampler_type", "enable_iter_perf_stats", "enable_iter_req_stats", "print_iter_log",
    "perf_metrics_max_requests", "batch_wait_timeout_ms", "batch_wait_timeout_iters",
    "batch_wait_max_tokens_ratio", "torch_compile_config", "enable_autotuner",
    "enable_layerwise_nvtx_marker", "enable_min_latency", "stream_interval",
    "force_dynamic_quantization", "allreduce_strategy", "checkpoint_loader",
    "checkpoint_format", "kv_connector_config", "mm_encoder_only", "env_overrides",
})  # fmt: skip

# llm_args.py KvCacheConfig, CudaGraphConfig, MoeConfig; DecodingBaseConfig + EagleDecodingConfig
# (1.1/1.2-era, plus later versions' speculative_model alias and eagle3_model_arch).
KV_CACHE_FIELDS = frozenset({
    "enable_block_reuse", "max_tokens", "max_attention_window", "sink_token_length",
    "free_gpu_memory_fraction", "host_cache_size", "onboard_blocks", "cross_kv_cache_fraction",
    "secondary_offload_min_priority", "event_buffer_max_size",
    "attention_dp_events_gather_period_ms", "enable_partial_reuse", "copy_on_partial_reuse",
    "use_uvm", "max_gpu_total_bytes", "dtype", "mamba_ssm_cache_dtype", "tokens_per_block",
})  # fmt: skip
CUDA_GRAPH_FIELDS = frozenset({"batch_sizes", "max_batch_size", "enable_padding"})
MOE_FIELDS = frozenset(
    {"backend", "max_num_tokens", "load_balancer", "disable_finalize_fusion", "use_low_precision_moe_combine"}
)
EAGLE_FIELDS_1_2 = frozenset({
    "max_draft_len", "max_total_draft_tokens", "speculative_model_dir", "max_concurrency",
    "load_format", "acceptance_window", "acceptance_length_threshold", "allow_advanced_sampling",
    "eagle_choices", "greedy_sampling", "posterior_threshold", "use_dynamic_tree",
    "dynamic_tree_max_topK", "num_eagle_layers", "max_non_leaves_per_layer", "eagle3_one_model",
    "eagle3_layers_to_capture", "eagle3_model_arch",
})  # fmt: skip
EAGLE_FIELDS_1_3 = frozenset({
    "max_draft_len", "max_total_draft_tokens", "speculative_model", "speculative_model_dir",
    "max_concurrency", "load_format", "acceptance_rate_window_size", "acceptance_rate_threshold",
    "allow_advanced_sampling", "enable_penalty", "use_rejection_sampling", "advanced_sampling_mode",
    "eagle_choices", "use_dynamic_tree", "dynamic_tree_max_topK", "num_eagle_layers",
    "max_non_leaves_per_layer", "eagle3_layers_to_capture", "eagle3_model_arch",
})  # fmt: skip


class _Recorder:
    """A config class that keeps what it was given and refuses unknown names (like extra='forbid')."""

    FIELDS: frozenset[str] = frozenset()

    def __init__(self, **kwargs: object) -> None:
        unknown = sorted(set(kwargs) - self.FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected fields {unknown}")
        self.fields = dict(kwargs)


class DoubleKvCacheConfig(_Recorder):
    FIELDS = KV_CACHE_FIELDS


class DoubleCudaGraphConfig(_Recorder):
    FIELDS = CUDA_GRAPH_FIELDS


class DoubleMoeConfig(_Recorder):
    FIELDS = MOE_FIELDS


class DoubleEagleDecodingConfig(_Recorder):
    FIELDS = EAGLE_FIELDS_1_2

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        # 1.3: speculative_model with speculative_model_dir as a validation alias (PR #10099).
        both = {"speculative_model_dir", "speculative_model"}
        if both <= set(self.fields) and both <= self.FIELDS:
            raise TypeError("speculative_model given twice (speculative_model_dir is its alias)")


class DoubleEagle3DecodingConfig(DoubleEagleDecodingConfig):
    pass


class DoubleEagleDecodingConfig13(DoubleEagleDecodingConfig):
    FIELDS = EAGLE_FIELDS_1_3


class DoubleEagle3DecodingConfig13(DoubleEagleDecodingConfig13):
    pass


class DoubleSamplingParams:
    """``SamplingParams``: every real field (with its real default), nothing else."""

    def __init__(self, **kwargs: object) -> None:
        unknown = sorted(set(kwargs) - set(SAMPLING_PARAMS_FIELDS))
        if unknown:
            raise TypeError(f"SamplingParams got unexpected fields {unknown}")
        self.given = dict(kwargs)
        self.values = {**SAMPLING_PARAMS_FIELDS, **kwargs}
        # The checks of SamplingParams._validate.
        top_p, top_k, temperature = self.values["top_p"], self.values["top_k"], self.values["temperature"]
        if isinstance(top_p, float) and not 0 <= top_p <= 1:
            raise ValueError(f"require 0 <= top_p <= 1, got top_p={top_p}")
        if isinstance(top_k, int) and top_k < 0:
            raise ValueError(f"require top_k >= 0, got top_k={top_k}")
        if isinstance(temperature, float | int) and temperature < 0:
            raise ValueError(f"require temperature >= 0, got temperature={temperature}")

    def int_value(self, name: str) -> int | None:
        value = self.values[name]
        return value if isinstance(value, int) and not isinstance(value, bool) else None


# tensorrt_llm/sampling_params.py (1.x), class GuidedDecodingParams: its fields, at most one guide set.
GUIDED_DECODING_FIELDS: Mapping[str, object] = {
    "json": None, "regex": None, "grammar": None, "json_object": False, "structural_tag": None,
}  # fmt: skip


class DoubleGuidedDecodingParams:
    """``llmapi.GuidedDecodingParams``: its real fields, and its check that one guide is set."""

    def __init__(self, **kwargs: object) -> None:
        unknown = sorted(set(kwargs) - set(GUIDED_DECODING_FIELDS))
        if unknown:
            raise TypeError(f"GuidedDecodingParams got unexpected fields {unknown}")
        self.given = dict(kwargs)
        set_guides = [name for name, value in kwargs.items() if value not in (None, False)]
        if len(set_guides) > 1:
            raise ValueError(f"only one guide can be used for a request, got {set_guides}")


class DoubleRequestError(RuntimeError):
    """``tensorrt_llm.executor.utils.RequestError``: one request failed in the executor."""


@dataclass(slots=True)
class DoubleLogprob:
    """``tensorrt_llm.executor.result.Logprob``."""

    logprob: float
    rank: int | None = None


@dataclass(slots=True)
class DoubleCompletionOutput:
    """``CompletionOutput``: cumulative, updated in place by the consumer's ``__anext__``."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[dict[int, DoubleLogprob]] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    request_perf_metrics: object | None = None
    _last_token_ids_len: int = 0

    @property
    def token_ids_diff(self) -> list[int]:
        return self.token_ids[self._last_token_ids_len :]


@dataclass(frozen=True, slots=True)
class _Response:
    """What the executor sends per step (``tllm.Response`` for one sequence)."""

    new_token_ids: tuple[int, ...] = ()
    new_logprobs: tuple[dict[int, DoubleLogprob], ...] = ()
    finish_reason: str | None = None
    stop_reason: int | None = None
    perf_metrics: object | None = None
    error: str | None = None
    decoding_iter: int = 0


@dataclass(slots=True)
class DoubleControls:
    """Knobs the tests set before the engine builds its LLM."""

    step_delay_s: float = 0.002
    """Executor iteration time (a GPU step)."""
    end_after_tokens: int | None = None
    """Emit ``end_id`` as this token (0-based), unless ignore_eos."""
    fail_prompts_starting_with: int | None = None
    """Requests whose first prompt token is this fail with an executor error..."""
    fail_after_steps: int = 1
    """...after this many steps."""
    ignore_eos_drops_stop_words: bool = False
    """Mimic versions whose _enqueue_request sends stop_words=[] when ignore_eos."""
    version: str = "1.2.1"
    """The release the double plays (``installed(version=...)``)."""


def double_tokens(prompt_token_ids: Sequence[int], count: int) -> list[int]:
    """The double model's deterministic output for a prompt: ordinary ids of a 49152-token vocabulary."""
    seed = sum(prompt_token_ids) * 31 + len(prompt_token_ids)
    return [1000 + (seed * 7919 + i * 104729) % 30000 for i in range(count)]


def tokens_per_step(prompt_token_ids: Sequence[int], step: int, max_draft_len: int) -> int:
    """Target token + accepted drafts at iteration ``step`` (1-based; the prompt's, the first, yields 1)."""
    if step == 1:
        return 1
    return 1 + (sum(prompt_token_ids) + step) % (max_draft_len + 1)


@dataclass(frozen=True, slots=True)
class SpecTruth:
    """A finished request's real iterations, drafted and accepted tokens (not visible to the adapter)."""

    iterations: int
    draft_tokens: int
    accepted_draft_tokens: int


class DoubleRequestOutput:
    """``RequestOutput`` / ``GenerationResult`` of one streaming request."""

    def __init__(self, executor: _DoubleExecutor, request_id: int, params: DoubleSamplingParams) -> None:
        self.request_id = request_id
        self.sampling_params = params
        self._executor = executor
        self._loop = asyncio.get_running_loop()  # AsyncQueue binds to the caller's loop
        self._queue: asyncio.Queue[_Response] = asyncio.Queue()
        self._outputs = [DoubleCompletionOutput(index=0)]
        self._done = False
        self._aborted = False
        self.decoding_iter = 0
        """GenerationResultBase.decoding_iter: the request's iterations so far, as of the last response."""
        self.truth: SpecTruth | None = None
        """What the executor really did (set when it finishes), for tests to check derived stats against."""

    @property
    def outputs(self) -> list[DoubleCompletionOutput]:
        return self._outputs

    @property
    def finished(self) -> bool:
        return self._done

    def abort(self) -> None:
        self._executor.abort_request(self.request_id)
        self._aborted = True

    def aborted(self) -> bool:
        return self._aborted

    def deliver(self, response: _Response) -> None:
        """From the executor thread."""
        with contextlib.suppress(RuntimeError):  # the consumer's loop is closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, response)

    def __aiter__(self) -> DoubleRequestOutput:
        return self

    async def __anext__(self) -> DoubleRequestOutput:
        if self._done:
            raise StopAsyncIteration
        response = await self._queue.get()
        if response.error is not None:
            raise DoubleRequestError(response.error)
        self._handle(response)
        return self

    def _handle(self, response: _Response) -> None:
        # As _handle_sequence: extend token_ids, replace logprobs with the cumulative list,
        # set finish_reason/stop_reason and trim the stop word on the final response.
        output = self._outputs[0]
        self.decoding_iter = response.decoding_iter
        output._last_token_ids_len = len(output.token_ids)
        output.token_ids.extend(response.new_token_ids)
        output.logprobs = [*output.logprobs, *response.new_logprobs]
        if response.finish_reason is not None:
            self._done = True
            output.finish_reason = response.finish_reason
            output.request_perf_metrics = response.perf_metrics
            if response.stop_reason is not None:
                output.stop_reason = response.stop_reason
                if output.token_ids[-1:] == [response.stop_reason]:
                    output.token_ids = output.token_ids[:-1]


@dataclass(slots=True)
class _Running:
    result: DoubleRequestOutput
    prompt: tuple[int, ...]
    script: list[int]
    arrival: datetime.timedelta
    produced: int = 0
    steps: int = 0
    draft_tokens: int = 0
    accepted: int = 0
    first_iter: int | None = None
    scheduled: datetime.timedelta | None = None
    abort_requested: bool = False
    pending: list[int] = field(default_factory=list)
    pending_logprobs: list[dict[int, DoubleLogprob]] = field(default_factory=list)


class _DoubleExecutor:
    """The executor loop, on its own thread like TensorRT-LLM's."""

    def __init__(self, controls: DoubleControls, max_draft_len: int, stream_interval: int) -> None:
        self._controls = controls
        self._max_draft_len = max_draft_len
        self._stream_interval = stream_interval
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._iteration = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trtllm-double-executor", daemon=True)
        self._thread.start()
        self.aborted_ids: list[int] = []

    @property
    def running_requests(self) -> int:
        with self._lock:
            return len(self._running)

    def submit(self, result: DoubleRequestOutput, prompt: Sequence[int], max_tokens: int) -> None:
        now = _steady_now()
        running = _Running(result, tuple(prompt), double_tokens(prompt, max_tokens), arrival=now)
        with self._lock:
            self._running[result.request_id] = running

    def abort_request(self, request_id: int) -> None:
        with self._lock:
            self.aborted_ids.append(request_id)
            if (running := self._running.get(request_id)) is not None:
                running.abort_requested = True

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._controls.step_delay_s):
            with self._lock:
                self._iteration += 1
                for request_id, running in list(self._running.items()):
                    response = self._step(running)
                    final = response.finish_reason is not None or response.error is not None
                    if final:
                        del self._running[request_id]
                        running.result.truth = SpecTruth(
                            running.steps, running.draft_tokens, running.accepted
                        )
                    running.pending += response.new_token_ids
                    running.pending_logprobs += response.new_logprobs
                    # PyExecutor._handle_responses: the first iteration, every stream_interval-th, the last.
                    if final or running.steps == 1 or running.steps % self._stream_interval == 0:
                        running.result.deliver(
                            dataclasses.replace(
                                response,
                                new_token_ids=tuple(running.pending),
                                new_logprobs=tuple(running.pending_logprobs),
                                decoding_iter=running.steps,
                            )
                        )
                        running.pending, running.pending_logprobs = [], []

    def _step(self, running: _Running) -> _Response:
        params = running.result.sampling_params
        if running.abort_requested:
            return _Response(finish_reason="cancelled", perf_metrics=self._perf(running))
        if running.first_iter is None:
            running.first_iter, running.scheduled = self._iteration, _steady_now()
        running.steps += 1
        controls = self._controls
        if (
            controls.fail_prompts_starting_with == running.prompt[0]
            and running.steps > controls.fail_after_steps
        ):
            return _Response(error="executor failed: CUDA error (simulated)")
        count = tokens_per_step(running.prompt, running.steps, self._max_draft_len)
        max_tokens = params.int_value("max_tokens") or 32
        min_tokens = params.int_value("min_tokens") or 0
        ignore_eos = params.values["ignore_eos"] is True
        end_id = -1 if ignore_eos else params.int_value("end_id")
        stop_ids = params.values["stop_token_ids"]
        if ignore_eos and controls.ignore_eos_drops_stop_words:
            stop_ids = None
        stop_set = set(stop_ids) if isinstance(stop_ids, list) else set()
        new: list[int] = []
        finish: str | None = None
        stop_reason: int | None = None
        for _ in range(count):
            position = running.produced
            end_at = controls.end_after_tokens
            if (
                end_id is not None
                and end_id >= 0
                and end_at is not None
                and position >= max(end_at, min_tokens)
            ):
                finish = "stop"  # END_ID: not part of the output
                break
            token = running.script[position] if position < len(running.script) else 0
            new.append(token)
            running.produced += 1
            if token in stop_set:
                finish, stop_reason = "stop", token
                break
            if running.produced >= max_tokens:
                finish = "length"
                break
        if self._max_draft_len and running.steps > 1:  # drafts verified this step, and those kept
            produced = len(new) + (1 if finish == "stop" and stop_reason is None else 0)  # + the end token
            running.draft_tokens += self._max_draft_len
            running.accepted += max(0, produced - 1)
        k = params.int_value("logprobs") or 0
        logprobs = tuple(_logprobs(token, k) for token in new) if k else ()
        perf = self._perf(running) if finish is not None else None
        return _Response(tuple(new), logprobs, finish, stop_reason, perf)

    def _perf(self, running: _Running) -> object | None:
        if running.result.sampling_params.values["return_perf_metrics"] is not True:
            return None
        scheduled = running.scheduled or running.arrival
        return SimpleNamespace(
            timing_metrics=SimpleNamespace(
                arrival_time=running.arrival,
                first_scheduled_time=scheduled,
                first_token_time=scheduled,
                last_token_time=_steady_now(),
            ),
            # Never filled on the PyTorch path before PR #17082 (what the adapter must cope with).
            speculative_decoding=SimpleNamespace(
                total_draft_tokens=0, total_accepted_draft_tokens=0, acceptance_rate=0.0
            ),
            first_iter=running.first_iter,
            last_iter=None if running.first_iter is None else running.first_iter + running.steps - 1,
            iter=None if running.first_iter is None else running.first_iter + running.steps - 1,
        )


def _logprobs(token: int, k: int) -> dict[int, DoubleLogprob]:
    # The sampled token first (rank 1), then k - 1 other candidates; as compute_logprobs returns them.
    entries = {token: DoubleLogprob(-0.25, rank=1)}
    for j in range(1, k):
        entries[token + j] = DoubleLogprob(-1.0 - j, rank=1 + j)
    return entries


def _steady_now() -> datetime.timedelta:
    return datetime.timedelta(seconds=time.monotonic())


class DoubleLLM:
    """``tensorrt_llm.LLM``: records its arguments, runs the double executor."""

    def __init__(self, **kwargs: object) -> None:
        unknown = sorted(set(kwargs) - LLM_ARGS_FIELDS)
        if unknown:
            raise TypeError(f"LLM got unexpected arguments {unknown}")
        if "model" not in kwargs:
            raise TypeError("LLM() missing required argument: 'model'")
        self.kwargs = dict(kwargs)
        state = _STATE
        state.llms.append(self)
        spec = kwargs.get("speculative_config")
        self._spec = spec.fields if isinstance(spec, DoubleEagleDecodingConfig) else None
        draft = self._spec.get("max_draft_len") if self._spec is not None else None
        interval = kwargs.get("stream_interval", 1)
        self._executor = _DoubleExecutor(
            state.controls,
            draft if isinstance(draft, int) else 0,
            interval if isinstance(interval, int) else 1,
        )
        self.dropped: list[set[str]] = []
        """Per submitted request: the fields this release would have silently ignored."""
        max_seq_len = kwargs.get("max_seq_len")
        self.args = SimpleNamespace(
            max_seq_len=max_seq_len if isinstance(max_seq_len, int) else 8192,
            max_batch_size=kwargs.get("max_batch_size") or 2048,
        )
        self.submitted: list[DoubleSamplingParams] = []
        self.results: list[DoubleRequestOutput] = []
        self.shutdown_called = False
        self._next_id = 0

    @property
    def running_requests(self) -> int:
        return self._executor.running_requests

    @property
    def aborted_ids(self) -> list[int]:
        return list(self._executor.aborted_ids)

    def generate_async(
        self,
        inputs: object,
        sampling_params: DoubleSamplingParams | None = None,
        lora_request: object = None,
        prompt_adapter_request: object = None,
        streaming: bool = False,
        kv_cache_retention_config: object = None,
        disaggregated_params: object = None,
    ) -> DoubleRequestOutput:
        if self.shutdown_called:
            raise RuntimeError("LLM is shut down")
        params = sampling_params if sampling_params is not None else DoubleSamplingParams()
        if isinstance(inputs, dict) and "prompt_token_ids" in inputs:
            prompt = list(inputs["prompt_token_ids"])
        elif isinstance(inputs, list) and all(isinstance(i, int) for i in inputs):
            prompt = list(inputs)
        else:
            raise TypeError(f"The inputs must be type str or list of int, but got {type(inputs)}")
        max_tokens = params.int_value("max_tokens") or 32
        if len(prompt) + max_tokens > self.args.max_seq_len:  # LLM._check_arguments
            raise ValueError("The sum of prompt length and max_tokens should not exceed max_seq_len")
        dropped = self._dropped(params)
        if self._is_1_3 and self._spec is not None and dropped & set(_PENALTIES):
            raise ValueError("penalties under speculative decoding need speculative_config.enable_penalty")
        self.dropped.append(dropped)
        self._next_id += 1
        result = DoubleRequestOutput(self._executor, self._next_id, params)
        self.submitted.append(params)
        self.results.append(result)
        self._executor.submit(result, prompt, max_tokens)
        return result

    def shutdown(self) -> None:
        self.shutdown_called = True
        self._executor.shutdown()

    @property
    def _is_1_3(self) -> bool:
        return _STATE.controls.version.startswith("1.3")

    def _dropped(self, params: DoubleSamplingParams) -> set[str]:
        """The fields of ``params`` this release would accept and then not apply."""
        values = params.values
        temperature = values["temperature"]
        sampling = isinstance(temperature, int | float) and temperature > 0
        active = {
            "top_p": sampling and values["top_p"] not in (None, 1.0),
            "top_k": sampling and values["top_k"] not in (None, 0),
            "min_p": sampling and values["min_p"] not in (None, 0.0),
            "seed": sampling and values["seed"] is not None,
            "repetition_penalty": values["repetition_penalty"] not in (None, 1.0),
            "presence_penalty": values["presence_penalty"] not in (None, 0.0),
            "frequency_penalty": values["frequency_penalty"] not in (None, 0.0),
        }
        dropped: set[str] = set()
        spec = self._spec
        if spec is not None and not self._is_1_3 and spec.get("eagle3_one_model") is True:
            if spec.get("allow_advanced_sampling") is not True:  # one-model EAGLE-3 is greedy (PR #9885)
                if sampling:
                    dropped.add("temperature")
                dropped |= {f for f in ("top_p", "top_k", "min_p", "seed") if active[f]}
            else:  # the EAGLE-3 rows of the sampling table: top-k and temperature
                dropped |= {f for f in ("top_p", "min_p") if active[f]}
        if spec is not None and self._is_1_3 and active["min_p"]:
            dropped.add("min_p")
        torch_sampler = self.kwargs.get("sampler_type", "auto") != "TRTLLMSampler"
        if torch_sampler and not self._is_1_3:  # before PRs #16485 and #17172
            dropped |= {f for f in (*_PENALTIES, "seed") if active[f]}
        if self._is_1_3 and spec is not None and spec.get("enable_penalty") is not True:
            dropped |= {f for f in _PENALTIES if active[f]}
        return dropped


_PENALTIES = ("repetition_penalty", "presence_penalty", "frequency_penalty")


@dataclass(slots=True)
class DoubleState:
    """What a test sees of the installed double."""

    controls: DoubleControls = field(default_factory=DoubleControls)
    llms: list[DoubleLLM] = field(default_factory=list)
    env_at_import: dict[str, str] | None = None

    @property
    def llm(self) -> DoubleLLM:
        assert self.llms, "no LLM was built"
        return self.llms[-1]


_STATE = DoubleState()


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.LLM = DoubleLLM  # type: ignore[attr-defined]  # building a module namespace
        module.SamplingParams = DoubleSamplingParams  # type: ignore[attr-defined]  # same
        version = _STATE.controls.version
        if module.__name__ == "tensorrt_llm":
            module.__version__ = version  # type: ignore[attr-defined]  # same
            _STATE.env_at_import = dict(os.environ)
            return
        is_1_3 = version.startswith("1.3")
        names = {
            "KvCacheConfig": DoubleKvCacheConfig,
            "CudaGraphConfig": DoubleCudaGraphConfig,
            "MoeConfig": DoubleMoeConfig,
            "EagleDecodingConfig": DoubleEagleDecodingConfig13 if is_1_3 else DoubleEagleDecodingConfig,
            "Eagle3DecodingConfig": DoubleEagle3DecodingConfig13 if is_1_3 else DoubleEagle3DecodingConfig,
            "RequestError": DoubleRequestError,
            "GuidedDecodingParams": DoubleGuidedDecodingParams,
        }
        for name, value in names.items():
            setattr(module, name, value)


class _Distribution(importlib.metadata.Distribution):
    """The installed-package metadata of the double, as a tensorrt_llm wheel would have it."""

    def __init__(self, version: str) -> None:
        self._version = version

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: tensorrt_llm\nVersion: {self._version}\n"
        return None

    def locate_file(self, path: str | os.PathLike[str]) -> pathlib.Path:
        raise FileNotFoundError(path)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ("tensorrt_llm", "tensorrt_llm.llmapi"):
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context | None = None
    ) -> Iterator[importlib.metadata.Distribution]:
        name = context.name if context is not None else None
        if name in (None, "tensorrt_llm", "tensorrt-llm"):
            yield _Distribution(_STATE.controls.version)


def _drop_modules() -> None:
    for name in [n for n in sys.modules if n == "tensorrt_llm" or n.startswith("tensorrt_llm.")]:
        del sys.modules[name]


@contextlib.contextmanager
def installed(version: str = "1.2.1") -> Iterator[DoubleState]:
    """Make ``import tensorrt_llm`` load this double, playing ``version``, (fresh state) for the duration."""
    global _STATE
    _STATE = DoubleState(controls=DoubleControls(version=version))
    finder = _Finder()
    _drop_modules()
    sys.meta_path.insert(0, finder)
    try:
        yield _STATE
    finally:
        sys.meta_path.remove(finder)
        _drop_modules()
        for llm in _STATE.llms:
            if not llm.shutdown_called:
                llm.shutdown()
