"""Part of the TEST DOUBLE of ``tensorrt_llm`` (tests/trtllm_double.py): its config classes.

TensorRT-LLM cannot be installed here (it needs an NVIDIA GPU and NVIDIA's own
wheels). These stand in for its strict pydantic models: each accepts only the
field names of the real class, in the shape of the release the double plays
(1.2.1, or the 1.3 rcs: the ``...13`` classes), and refuses any other keyword.
``SamplingParams`` and ``GuidedDecodingParams`` also make the real ones' checks.
"""

from __future__ import annotations

from collections.abc import Mapping

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
