"""The ``tensorrt_llm.LLM(...)`` arguments tokenwire accepts, with their types, per TensorRT-LLM release.

This is a hand-written allow-list, not a mirror of TensorRT-LLM. The keys were
first checked against ``tensorrt_llm/llmapi/llm_args.py`` of 1.2.0rc2 (commit
b35ac1b6), then against what changed up to the 1.3 release candidates
(``engines.trtllm.versions`` lists each change with its PR). ``llm_args_schema``
builds the schema of one ``Release``; the classes the sections come from:

- top level: ``BaseLlmArgs`` and ``TorchLlmArgs`` (the PyTorch backend that
  ``tensorrt_llm.LLM`` is in 1.x);
- ``kv_cache_config``: ``KvCacheConfig``;
- ``cuda_graph_config``: ``CudaGraphConfig`` (``null`` disables CUDA graphs);
- ``moe_config``: ``MoeConfig``;
- ``speculative_config``: ``DecodingBaseConfig`` + ``EagleDecodingConfig`` /
  ``Eagle3DecodingConfig``, chosen by ``decoding_type`` ("Eagle3", as NVIDIA's
  guides spell EAGLE-3 now; the older "Eagle" means the same on the PyTorch
  backend).

A key missing here is rejected even if TensorRT-LLM knows it: add it (after
checking its type in each supported release) rather than loosening the check.
A key one release renamed or removed is refused with what to write instead.
Types are strict: ``true`` is not an integer, ``"8"`` is not an integer, and an
integer is accepted where TensorRT-LLM expects a float (pydantic does too).
"""

from __future__ import annotations

import difflib
import enum
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from engines.trtllm.versions import Release


class Kind(enum.Enum):
    BOOL = "a boolean (true/false)"
    INT = "an integer"
    FLOAT = "a number"
    STR = "a string"
    INT_LIST = "a list of integers"
    STR_MAP = "a table of strings"


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


def _moe_config(release: Release) -> Section:
    return Section(
        {
            # "AUTO" is the default from 1.3 on; "WIDEEP" is gone there.
            "backend": Scalar(Kind.STR, choices=release.moe_backends),
            "max_num_tokens": _int(1, nullable=True),
            "disable_finalize_fusion": _BOOL,
            "use_low_precision_moe_combine": _BOOL,
        }
    )


def _decoding_base(release: Release) -> dict[str, Scalar]:
    """DecodingBaseConfig fields, shared by every decoding type."""
    window, threshold = release.acceptance_keys
    fields: dict[str, Scalar] = {
        "max_draft_len": _int(1, nullable=True),
        "max_total_draft_tokens": _int(1, nullable=True),
        "max_concurrency": _int(1, nullable=True),
        "load_format": _OPT_STR,
        window: _int(0, nullable=True),
        # 1.3 (PR #12905) bounds the renamed threshold to [0, 1]; 1.2.1's is only >= 0.
        threshold: Scalar(
            Kind.FLOAT, nullable=True, minimum=0.0, maximum=None if release.eagle3_one_model_key else 1.0
        ),
    }
    for key in release.draft_model_keys:
        fields[key] = _OPT_STR
    if release.allow_advanced_sampling_key:
        # 1.2.x: one-model EAGLE-3 samples only with this set (PR #9885); greedy otherwise.
        fields["allow_advanced_sampling"] = _BOOL
    if release.penalty_gate_key:
        # 1.3: penalties under speculation are refused by TensorRT-LLM unless this is set.
        fields["enable_penalty"] = _BOOL
    return fields


def _eagle(release: Release) -> dict[str, Scalar]:
    """EagleDecodingConfig / Eagle3DecodingConfig. eagle_choices and eagle3_layers_to_capture are
    left out: the former is marked "under development, do not use", the latter needs a set kind."""
    fields: dict[str, Scalar] = {
        **_decoding_base(release),
        "use_dynamic_tree": Scalar(Kind.BOOL, nullable=True),
        "dynamic_tree_max_topK": _int(1, nullable=True),
        "num_eagle_layers": _int(1, nullable=True),
        "max_non_leaves_per_layer": _int(1, nullable=True),
    }
    if release.eagle3_one_model_key:
        # Absent from the 1.3.0rc27 reference (one-model is the only mode there).
        fields["eagle3_one_model"] = Scalar(Kind.BOOL, nullable=True)
        fields["greedy_sampling"] = Scalar(Kind.BOOL, nullable=True)
        fields["posterior_threshold"] = Scalar(Kind.FLOAT, nullable=True)
    return fields


EAGLE3_DECODING_TYPES = ("Eagle3", "Eagle")
"""``decoding_type`` values for EAGLE-3: "Eagle3" (NVIDIA's spelling now, PR #10124) and the older "Eagle"."""


def _speculative_config(release: Release) -> Section:
    eagle = _eagle(release)
    return Section(
        {},
        nullable=True,
        discriminator="decoding_type",
        variants={name: eagle for name in EAGLE3_DECODING_TYPES},
    )


def _moved(release: Release) -> dict[str, str]:
    """Keys another supported release spells differently or lacks: what to write instead."""
    other = "1.3" if release.line == "1.2.1" else "1.2.1"
    name = release.name
    hints: dict[str, str] = {}
    window, threshold = release.acceptance_keys
    old_window, old_threshold = (
        ("acceptance_window", "acceptance_length_threshold")
        if release.line == "1.3"
        else ("acceptance_rate_window_size", "acceptance_rate_threshold")
    )
    hints[old_window] = f"{name} calls it {window!r}"
    hints[old_threshold] = f"{name} calls it {threshold!r}"
    if "speculative_model" not in release.draft_model_keys:
        hints["speculative_model"] = f"{name} calls it {release.draft_model_key!r}"
    if not release.eagle3_one_model_key:
        gone = "one-model is the only EAGLE-3 mode in TensorRT-LLM 1.3 (PR #17366): remove it"
        hints.update(eagle3_one_model=gone, greedy_sampling=f"not in {name}: remove it")
        hints["posterior_threshold"] = f"not in {name}: remove it"
    if not release.allow_advanced_sampling_key:
        hints["allow_advanced_sampling"] = (
            f"a no-op in {name}: sampling is detected per step (PR #14745); remove it"
        )
    if not release.penalty_gate_key:
        hints["enable_penalty"] = f"exists from TensorRT-LLM {other} on"
    return hints


def _sampler_choices(release: Release) -> Scalar:
    return Scalar(Kind.STR, choices=release.samplers)


def llm_args_schema(release: Release) -> Section:
    """Every ``tensorrt_llm.LLM`` argument tokenwire accepts for ``release``."""
    return Section(_llm_args_fields(release))


def _llm_args_fields(release: Release) -> dict[str, Scalar | Section]:
    return {
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
        "speculative_config": _speculative_config(release),
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
        # BaseLlmArgs.env_overrides (PR #9104): set in the LLM process and passed to every MPI worker,
        # which otherwise get only TRTLLM*/TLLM* variables (llmapi/mpi_session.py).
        "env_overrides": Scalar(Kind.STR_MAP, nullable=True),
        # TorchLlmArgs
        "garbage_collection_gen0_threshold": _int(0),
        "cuda_graph_config": CUDA_GRAPH_CONFIG,
        "disable_overlap_scheduler": _BOOL,
        "moe_config": _moe_config(release),
        "attn_backend": _STR,
        "sampler_type": _sampler_choices(release),
        "enable_iter_perf_stats": _BOOL,
        "enable_iter_req_stats": _BOOL,
        "print_iter_log": _BOOL,
        "batch_wait_timeout_ms": Scalar(Kind.FLOAT, minimum=0.0),
        "batch_wait_timeout_iters": _int(0),
        # Field(default=0, ge=0, le=1)
        "batch_wait_max_tokens_ratio": Scalar(Kind.FLOAT, minimum=0.0, maximum=1.0),
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


def validate_llm_args(llm_args: Mapping[str, object], release: Release) -> list[Violation]:
    """Every problem with ``llm_args`` for ``release`` (unknown keys, wrong types, bounds), in key order."""
    found = list(_Checker(release).section(llm_args_schema(release), llm_args, prefix=""))
    spec = llm_args.get("speculative_config")
    if llm_args.get("sampler_type") == "TRTLLMSampler" and isinstance(spec, Mapping):
        # TensorRT-LLM's sampling docs: the TRTLLM sampler "is not supported when using speculative
        # decoders, such as MTP or Eagle-3" (1.0); no later 1.2 text says otherwise.
        found.append(
            Violation("sampler_type", f"TRTLLMSampler does not run speculative decoding in {release.name}")
        )
    return found


def all_leaf_keys(release: Release) -> list[str]:
    """Every dotted key the schema of ``release`` accepts (variant keys included), sorted."""
    return sorted(_leaf_keys(llm_args_schema(release), ""))


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


class _Checker:
    """Checks tables against one release's schema; knows what other releases call a key."""

    def __init__(self, release: Release) -> None:
        self._release = release
        self._moved = _moved(release)
        self._leaves = all_leaf_keys(release)

    def section(self, section: Section, table: Mapping[str, object], prefix: str) -> Iterator[Violation]:
        fields: dict[str, Scalar | Section] = dict(section.fields)
        if section.discriminator is not None:
            chosen = table.get(section.discriminator)
            key = prefix + section.discriminator
            if chosen is None:
                yield Violation(key, f"is required; one of {_listing(section.variants)}")
                return
            if not isinstance(chosen, str) or chosen not in section.variants:
                yield Violation(key, f"must be one of {_listing(section.variants)}, got {_show(chosen)}")
                return
            fields.update(section.variants[chosen])
            yield from self._required_by_variant(table, prefix, key, chosen)
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
                yield Violation(key, self._unknown(name, fields, prefix))
            elif isinstance(spec, Section):
                if value is None and spec.nullable:
                    continue
                if not isinstance(value, Mapping):
                    yield Violation(key, f"must be a table of settings, got {_show(value)}")
                    continue
                yield from self.section(spec, value, prefix=key + ".")
            else:
                problem = _check_scalar(spec, value)
                if problem is not None:
                    yield Violation(key, problem)

    def _required_by_variant(
        self, table: Mapping[str, object], prefix: str, key: str, chosen: str
    ) -> Iterator[Violation]:
        # EagleDecodingConfig.__init__ asserts max_draft_len; .validate() requires the draft model.
        if table.get("max_draft_len") is None:
            yield Violation(prefix + "max_draft_len", f"is required when {key} is {chosen!r}")
        drafts = [name for name in self._release.draft_model_keys if table.get(name) is not None]
        if not drafts:
            yield Violation(prefix + self._release.draft_model_key, f"is required when {key} is {chosen!r}")
        elif len(drafts) > 1:
            yield Violation(prefix + drafts[1], f"names the draft model again ({prefix + drafts[0]} is set)")

    def _unknown(self, name: str, siblings: Mapping[str, object], prefix: str) -> str:
        moved = self._moved.get(name)
        if moved is not None:
            return f"is not an argument of {self._release.name}: {moved}"
        return f"is not a known argument of {self._release.name}" + self._suggestion(name, siblings, prefix)

    def _suggestion(self, name: str, siblings: Mapping[str, object], prefix: str) -> str:
        close = difflib.get_close_matches(name, list(siblings), n=1, cutoff=0.6)
        if close:
            return f"; did you mean {prefix + close[0]!r}?"
        # A right name in the wrong place (free_gpu_memory_fraction at the top level).
        elsewhere = [key for key in self._leaves if key.rsplit(".", 1)[-1] == name]
        if elsewhere:
            return f"; did you mean {elsewhere[0]!r}?"
        return ""


def _check_scalar(spec: Scalar, value: object) -> str | None:
    expected = f"expected {spec.describe()}, got {_show(value)}"
    if value is None:
        return None if spec.nullable else expected
    numbers: list[float]
    if spec.kind is Kind.BOOL:
        return None if isinstance(value, bool) else expected
    if spec.kind is Kind.STR_MAP:
        ok = isinstance(value, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        return None if ok else expected
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
