"""The ``tensorrt_llm.LLM(...)`` arguments tokenwire accepts, with their types.

This is a hand-written allow-list, not a mirror of TensorRT-LLM: every key
below was checked against ``tensorrt_llm/llmapi/llm_args.py`` of TensorRT-LLM
**1.2.0rc2** (commit b35ac1b6; read from its rendered source,
``1.2.0rc2/_modules/tensorrt_llm/llmapi/llm_args.html`` on the project's
gh-pages branch). The classes the sections come from:

- top level: ``BaseLlmArgs`` and ``TorchLlmArgs`` (the PyTorch backend that
  ``tensorrt_llm.LLM`` is in 1.x);
- ``kv_cache_config``: ``KvCacheConfig``;
- ``cuda_graph_config``: ``CudaGraphConfig`` (``null`` disables CUDA graphs);
- ``moe_config``: ``MoeConfig``;
- ``speculative_config``: ``DecodingBaseConfig`` + ``EagleDecodingConfig``,
  chosen by ``decoding_type``. In 1.2.0rc2 EAGLE-3 is ``decoding_type: Eagle``
  (there is no separate ``"Eagle3"`` discriminator yet) and the draft
  checkpoint key is ``speculative_model_dir``.

A key missing here is rejected even if TensorRT-LLM knows it: add it (after
checking its type at the pinned version) rather than loosening the check.
Types are strict: ``true`` is not an integer, ``"8"`` is not an integer, and an
integer is accepted where TensorRT-LLM expects a float (pydantic does too).
"""

from __future__ import annotations

import difflib
import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

TRTLLM_VERSION = "1.2.0rc2"


class Kind(enum.Enum):
    BOOL = "a boolean (true/false)"
    INT = "an integer"
    FLOAT = "a number"
    STR = "a string"
    INT_LIST = "a list of integers"


@dataclass(frozen=True, slots=True)
class Scalar:
    """One leaf argument: its kind, whether ``null`` is allowed, and its bounds."""

    kind: Kind
    nullable: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> str:
        text = self.kind.value
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        if self.nullable:
            text += " or null"
        return text


@dataclass(frozen=True, slots=True)
class Section:
    """A nested configuration object (a dict keyed by the TensorRT-LLM field names)."""

    fields: Mapping[str, Scalar | Section]
    nullable: bool = False
    required: tuple[str, ...] = ()
    discriminator: str | None = None
    """Key whose value picks one of ``variants``; the variant's fields are added to ``fields``."""
    variants: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with the merged arguments, at a dotted key such as ``kv_cache_config.dtype``."""

    key: str
    message: str


def _int(minimum: float | None = None, *, nullable: bool = False) -> Scalar:
    return Scalar(Kind.INT, nullable=nullable, minimum=minimum)


_BOOL = Scalar(Kind.BOOL)
_STR = Scalar(Kind.STR)
_OPT_STR = Scalar(Kind.STR, nullable=True)

KV_CACHE_CONFIG = Section(
    {
        "enable_block_reuse": _BOOL,
        "max_tokens": _int(1, nullable=True),
        "max_attention_window": Scalar(Kind.INT_LIST, nullable=True, minimum=1),
        "sink_token_length": _int(0, nullable=True),
        # KvCacheConfig.validate_free_gpu_memory_fraction: 0 <= v <= 1.
        "free_gpu_memory_fraction": Scalar(Kind.FLOAT, nullable=True, minimum=0.0, maximum=1.0),
        "host_cache_size": _int(0, nullable=True),
        "onboard_blocks": _BOOL,
        "cross_kv_cache_fraction": Scalar(Kind.FLOAT, nullable=True, minimum=0.0, maximum=1.0),
        "secondary_offload_min_priority": _int(nullable=True),
        "event_buffer_max_size": _int(0),
        "enable_partial_reuse": _BOOL,
        "copy_on_partial_reuse": _BOOL,
        "use_uvm": _BOOL,
        "max_gpu_total_bytes": _int(0),
        "dtype": _STR,
        "tokens_per_block": _int(1),
    }
)

CUDA_GRAPH_CONFIG = Section(
    {
        "batch_sizes": Scalar(Kind.INT_LIST, nullable=True, minimum=1),
        # CudaGraphConfig.validate_cuda_graph_max_batch_size: non-negative; 0 = derive.
        "max_batch_size": _int(0),
        "enable_padding": _BOOL,
    },
    nullable=True,
)

MOE_CONFIG = Section(
    {
        "backend": Scalar(
            Kind.STR, choices=("CUTLASS", "CUTEDSL", "WIDEEP", "TRTLLM", "DEEPGEMM", "VANILLA", "TRITON")
        ),
        "max_num_tokens": _int(1, nullable=True),
        "disable_finalize_fusion": _BOOL,
        "use_low_precision_moe_combine": _BOOL,
    }
)

# DecodingBaseConfig fields, shared by every decoding type.
_DECODING_BASE: dict[str, Scalar] = {
    "max_draft_len": _int(1, nullable=True),
    "max_total_draft_tokens": _int(1, nullable=True),
    "speculative_model_dir": _OPT_STR,
    "max_concurrency": _int(1, nullable=True),
    "load_format": _OPT_STR,
    "acceptance_window": _int(0, nullable=True),
    "acceptance_length_threshold": Scalar(Kind.FLOAT, nullable=True, minimum=0.0),
}

# EagleDecodingConfig (EAGLE-3 in the PyTorch backend). eagle_choices and
# eagle3_layers_to_capture are left out: the former is marked "under development,
# do not use" at this version, the latter is a set of ints that needs its own kind.
_EAGLE: dict[str, Scalar] = {
    **_DECODING_BASE,
    "greedy_sampling": Scalar(Kind.BOOL, nullable=True),
    "posterior_threshold": Scalar(Kind.FLOAT, nullable=True),
    "use_dynamic_tree": Scalar(Kind.BOOL, nullable=True),
    "dynamic_tree_max_topK": _int(1, nullable=True),
    "num_eagle_layers": _int(1, nullable=True),
    "max_non_leaves_per_layer": _int(1, nullable=True),
    "eagle3_one_model": Scalar(Kind.BOOL, nullable=True),
}

SPECULATIVE_CONFIG = Section(
    {},
    nullable=True,
    discriminator="decoding_type",
    variants={"Eagle": _EAGLE},
)

# Per decoding type, keys TensorRT-LLM refuses to start without
# (EagleDecodingConfig.__init__ asserts max_draft_len; .validate() requires the draft).
_REQUIRED_BY_VARIANT: Mapping[str, tuple[str, ...]] = {
    "Eagle": ("max_draft_len", "speculative_model_dir"),
}

# Later TensorRT-LLM versions spell EAGLE-3 "Eagle3"; 1.2.0rc2 rejects that.
_VARIANT_HINTS: Mapping[str, str] = {
    "Eagle3": f"EAGLE-3 is decoding_type 'Eagle' in TensorRT-LLM {TRTLLM_VERSION}",
}

LLM_ARGS = Section(
    {
        # BaseLlmArgs
        "model": _STR,
        "tokenizer": _OPT_STR,
        "tokenizer_mode": Scalar(Kind.STR, choices=("auto", "slow")),
        "skip_tokenizer_init": _BOOL,
        "trust_remote_code": _BOOL,
        "tensor_parallel_size": _int(1),
        "dtype": _STR,
        "revision": _OPT_STR,
        "tokenizer_revision": _OPT_STR,
        "pipeline_parallel_size": _int(1),
        "context_parallel_size": _int(1),
        "gpus_per_node": _int(1, nullable=True),
        "moe_cluster_parallel_size": _int(1, nullable=True),
        "moe_tensor_parallel_size": _int(1, nullable=True),
        "moe_expert_parallel_size": _int(1, nullable=True),
        "enable_attention_dp": _BOOL,
        "enable_lm_head_tp_in_adp": _BOOL,
        "kv_cache_config": KV_CACHE_CONFIG,
        "enable_chunked_prefill": _BOOL,
        "guided_decoding_backend": Scalar(Kind.STR, nullable=True, choices=("xgrammar", "llguidance")),
        "iter_stats_max_iterations": _int(0, nullable=True),
        "request_stats_max_iterations": _int(0, nullable=True),
        "speculative_config": SPECULATIVE_CONFIG,
        "max_batch_size": _int(1, nullable=True),
        "max_input_len": _int(1, nullable=True),
        "max_seq_len": _int(1, nullable=True),
        "max_beam_width": _int(1, nullable=True),
        "max_num_tokens": _int(1, nullable=True),
        "gather_generation_logits": _BOOL,
        "reasoning_parser": _OPT_STR,
        # Deprecated in 1.2 but still accepted; "pytorch" is the only backend tokenwire drives.
        "backend": Scalar(Kind.STR, nullable=True, choices=("pytorch",)),
        "return_perf_metrics": _BOOL,
        # TorchLlmArgs
        "garbage_collection_gen0_threshold": _int(0),
        "cuda_graph_config": CUDA_GRAPH_CONFIG,
        "disable_overlap_scheduler": _BOOL,
        "moe_config": MOE_CONFIG,
        "attn_backend": _STR,
        "sampler_type": Scalar(Kind.STR, choices=("TRTLLMSampler", "TorchSampler", "auto")),
        "enable_iter_perf_stats": _BOOL,
        "enable_iter_req_stats": _BOOL,
        "print_iter_log": _BOOL,
        "batch_wait_timeout_ms": Scalar(Kind.FLOAT, minimum=0.0),
        "batch_wait_timeout_iters": _int(0),
        "batch_wait_max_tokens_ratio": Scalar(Kind.FLOAT, minimum=0.0),
        "enable_autotuner": _BOOL,
        "enable_layerwise_nvtx_marker": _BOOL,
        # TorchLlmArgs: "If true, enable min-latency mode. Currently only used for Llama4."
        "enable_min_latency": _BOOL,
        "stream_interval": _int(1),
        "force_dynamic_quantization": _BOOL,
        "allreduce_strategy": Scalar(
            Kind.STR,
            nullable=True,
            choices=(
                "AUTO",
                "NCCL",
                "UB",
                "MINLATENCY",
                "ONESHOT",
                "TWOSHOT",
                "LOWPRECISION",
                "MNNVL",
                "NCCL_SYMMETRIC",
            ),
        ),
    }
)


def validate_llm_args(llm_args: Mapping[str, object]) -> list[Violation]:
    """Every problem with ``llm_args`` (unknown keys, wrong types, out of range), in key order."""
    return list(_check_section(LLM_ARGS, llm_args, prefix=""))


def all_leaf_keys() -> list[str]:
    """Every dotted key the schema accepts (variant keys included), sorted."""
    return sorted(_leaf_keys(LLM_ARGS, ""))


def _leaf_keys(section: Section, prefix: str) -> Iterator[str]:
    if section.discriminator is not None:
        yield prefix + section.discriminator
    names: dict[str, Scalar | Section] = dict(section.fields)
    for variant in section.variants.values():
        names.update(variant)
    for name, spec in names.items():
        if isinstance(spec, Section):
            yield from _leaf_keys(spec, f"{prefix}{name}.")
        else:
            yield prefix + name


def _check_section(section: Section, table: Mapping[str, object], prefix: str) -> Iterator[Violation]:
    fields: dict[str, Scalar | Section] = dict(section.fields)
    if section.discriminator is not None:
        chosen = table.get(section.discriminator)
        key = prefix + section.discriminator
        if chosen is None:
            yield Violation(key, f"is required; one of {_listing(section.variants)}")
            return
        if not isinstance(chosen, str) or chosen not in section.variants:
            hint = _VARIANT_HINTS.get(chosen) if isinstance(chosen, str) else None
            yield Violation(
                key,
                f"must be one of {_listing(section.variants)}, got {_show(chosen)}"
                + (f" ({hint})" if hint else ""),
            )
            return
        fields.update(section.variants[chosen])
        for name in _REQUIRED_BY_VARIANT.get(chosen, ()):
            if table.get(name) is None:
                yield Violation(prefix + name, f"is required when {key} is {chosen!r}")
    for name in section.required:
        if table.get(name) is None:
            yield Violation(prefix + name, "is required")
    for name in sorted(table):
        if name == section.discriminator:
            continue
        value = table[name]
        key = prefix + name
        spec = fields.get(name)
        if spec is None:
            yield Violation(key, "is not a known argument" + _suggestion(name, fields, prefix))
        elif isinstance(spec, Section):
            if value is None and spec.nullable:
                continue
            if not isinstance(value, Mapping):
                yield Violation(key, f"must be a table of settings, got {_show(value)}")
                continue
            yield from _check_section(spec, value, prefix=key + ".")
        else:
            problem = _check_scalar(spec, value)
            if problem is not None:
                yield Violation(key, problem)


def _check_scalar(spec: Scalar, value: object) -> str | None:
    expected = f"expected {spec.describe()}, got {_show(value)}"
    if value is None:
        return None if spec.nullable else expected
    numbers: list[float]
    if spec.kind is Kind.BOOL:
        return None if isinstance(value, bool) else expected
    if spec.kind is Kind.STR:
        if not isinstance(value, str):
            return expected
        if spec.choices and value not in spec.choices:
            return expected
        return None
    if spec.kind is Kind.INT:
        # bool is a subclass of int in Python; a TOML/JSON `true` is never a size.
        if not isinstance(value, int) or isinstance(value, bool):
            return expected
        numbers = [value]
    elif spec.kind is Kind.FLOAT:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return expected
        if not math.isfinite(value):
            return expected
        numbers = [value]
    else:
        if not isinstance(value, list):
            return expected
        numbers = []
        for item in value:
            if not isinstance(item, int) or isinstance(item, bool):
                return expected
            numbers.append(item)
    for number in numbers:
        if spec.minimum is not None and number < spec.minimum:
            return f"must be at least {_bound(spec.minimum)}, got {_show(value)}"
        if spec.maximum is not None and number > spec.maximum:
            return f"must be at most {_bound(spec.maximum)}, got {_show(value)}"
    return None


def _suggestion(name: str, siblings: Mapping[str, object], prefix: str) -> str:
    close = difflib.get_close_matches(name, list(siblings), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    # A right name in the wrong place (free_gpu_memory_fraction at the top level).
    elsewhere = [key for key in all_leaf_keys() if key.rsplit(".", 1)[-1] == name]
    if elsewhere:
        return f"; did you mean {elsewhere[0]!r}?"
    return ""


def _listing(names: Mapping[str, object]) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def _bound(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _show(value: object) -> str:
    """A value as the user wrote it (JSON-ish), with its type when that is the problem."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return f"list {value!r}"
    return f"{type(value).__name__} {value!r}"
