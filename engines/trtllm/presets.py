"""Named starting points for the TensorRT-LLM engine, copied from NVIDIA's published recipes.

A preset is plain data: the ``tensorrt_llm.LLM`` keyword arguments and the
environment NVIDIA's recipe sets. Pick one with ``--preset NAME`` (or
``preset = "NAME"`` in a config file) and override any key with the config
file or ``--set key.path=value``. Values are for 8 GPUs in one node, which is
what NVIDIA benchmarked (8x B200); check ``kv_cache_config`` and batch sizes on
other cards.

trtllm-serve flags in the recipes map to LLM arguments as follows:
``--tp_size`` -> ``tensor_parallel_size``, ``--ep_size`` ->
``moe_expert_parallel_size``, ``--kv_cache_free_gpu_memory_fraction`` ->
``kv_cache_config.free_gpu_memory_fraction``, ``--max_batch_size`` ->
``max_batch_size``, ``--trust_remote_code`` -> ``trust_remote_code``; the
``--extra_llm_api_options`` YAML is already in LLM-argument form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from engines.trtllm.versions import Release

MAVERICK_FP8 = "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8"
MAVERICK_EAGLE3 = "nvidia/Llama-4-Maverick-17B-128E-Eagle3"


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    summary: str
    """One line for ``--help`` and error messages."""
    llm_args: Mapping[str, object]
    """In the newest supported release's vocabulary; ``for_release`` translates it."""
    env: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each value comes from, per dotted key (``env.NAME`` for the environment); every key has one."""


REFERENCES: Mapping[str, str] = {
    "[guide]": "NVIDIA/TensorRT-LLM docs/source/blogs/tech_blog/blog06_Llama4_maverick_eagle_guide.md "
    "@28af34e8 (the >1000 tokens/s/user guide: its trtllm-serve command, c.yaml and docker run -e)",
    "[guide-1.2]": "the same guide as blog6_Llama4_maverick_eagle_guide.md @0c6a62a1 (its 1.2-era text)",
    "[min-latency]": "NVIDIA/TensorRT-LLM examples/models/core/llama4/README.md @03dd9bb8, "
    "'B200 Min-latency' (extra-llm-api-config.yml and the trtllm-serve command)",
    "[max-throughput]": "NVIDIA/TensorRT-LLM examples/models/core/llama4/README.md @03dd9bb8, "
    "'B200 Max-throughput' (extra-llm-api-config.yml and the trtllm-serve command)",
    "[pr9885]": "NVIDIA/TensorRT-LLM PR #9885, sampling on one-model EAGLE-3 (1.2.x)",
}
"""What the tags in ``Preset.sources`` stand for."""
_BLOG, _BLOG_OLD, _MIN_LATENCY, _MAX_THROUGHPUT = (
    "[guide]",
    "[guide-1.2]",
    "[min-latency]",
    "[max-throughput]",
)

MAVERICK_LATENCY = Preset(
    name="maverick-fp8-eagle3-latency",
    summary="Llama 4 Maverick FP8 + EAGLE-3 (one-model, 3 drafts), TP8, min-latency, batch 8: few users",
    llm_args={
        "model": MAVERICK_FP8,
        "trust_remote_code": True,
        "tensor_parallel_size": 8,
        "moe_expert_parallel_size": 1,
        "enable_attention_dp": False,
        "enable_min_latency": True,
        "enable_autotuner": False,
        "max_batch_size": 8,
        "stream_interval": 2,
        "cuda_graph_config": {"max_batch_size": 8, "enable_padding": True},
        "kv_cache_config": {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.75},
        "speculative_config": {
            "decoding_type": "Eagle3",
            "max_draft_len": 3,
            "speculative_model": MAVERICK_EAGLE3,
        },
    },
    env={
        "TRTLLM_ENABLE_PDL": "1",
        # Parallel weight loading conflicted with min-latency mode (the README's older text says so).
        "TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": "True",
    },
    sources={
        "model": f"{_BLOG} 'Download Artifacts'",
        "trust_remote_code": f"{_BLOG} trtllm-serve --trust_remote_code",
        "tensor_parallel_size": f"{_BLOG} trtllm-serve --tp_size 8",
        "moe_expert_parallel_size": f"{_BLOG} trtllm-serve --ep_size 1",
        "enable_attention_dp": f"{_BLOG} c.yaml",
        "enable_min_latency": f"{_BLOG} c.yaml",
        "enable_autotuner": f"{_BLOG} c.yaml",
        "max_batch_size": f"{_MIN_LATENCY} --max_batch_size 8 (equal to the CUDA-graph maximum, as it asks)",
        "stream_interval": _MIN_LATENCY,
        "cuda_graph_config.max_batch_size": f"{_BLOG} c.yaml, {_MIN_LATENCY}",
        "cuda_graph_config.enable_padding": _MIN_LATENCY,
        "kv_cache_config.enable_block_reuse": f"{_BLOG} c.yaml",
        "kv_cache_config.free_gpu_memory_fraction": f"{_BLOG} --kv_cache_free_gpu_memory_fraction 0.75",
        "speculative_config.decoding_type": f"{_BLOG} c.yaml (Eagle3)",
        "speculative_config.max_draft_len": f"{_BLOG} c.yaml",
        "speculative_config.speculative_model": f"{_BLOG} 'Download Artifacts' (the draft model)",
        "env.TRTLLM_ENABLE_PDL": f"{_BLOG} docker run -e",
        "env.TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": f"{_BLOG} docker run -e",
    },
)
"""NVIDIA's "Llama4 Maverick + Eagle3" guide, with the README's B200 min-latency batch settings.

The guide's ``trtllm-serve`` command and ``c.yaml`` give the parallelism, the
min-latency switches, the KV cache settings, EAGLE-3 with three drafts and the
environment; the README's B200 min-latency recipe adds ``max_batch_size 8``
(equal to the CUDA-graph maximum, as its tuning note asks), ``enable_padding``
and ``stream_interval 2``. The guide warns that tokens/s per user "degrades
rapidly" as concurrency grows: use the throughput preset for many users.
``for_release`` adds what 1.2.1 needs (see there).
"""

MAVERICK_THROUGHPUT = Preset(
    name="maverick-fp8-eagle3-throughput",
    summary="Llama 4 Maverick FP8, TP8 x EP8, attention DP, CUDA graphs to 512: high concurrency",
    llm_args={
        "model": MAVERICK_FP8,
        "trust_remote_code": True,
        "tensor_parallel_size": 8,
        "moe_expert_parallel_size": 8,
        "enable_attention_dp": True,
        "max_batch_size": 512,
        "stream_interval": 2,
        "cuda_graph_config": {"max_batch_size": 512, "enable_padding": True},
    },
    sources={
        "model": _MAX_THROUGHPUT,
        "trust_remote_code": f"{_MAX_THROUGHPUT} --trust_remote_code",
        "tensor_parallel_size": f"{_MAX_THROUGHPUT} --tp_size 8",
        "moe_expert_parallel_size": f"{_MAX_THROUGHPUT} --ep_size 8",
        "enable_attention_dp": _MAX_THROUGHPUT,
        "max_batch_size": f"{_MAX_THROUGHPUT} --max_batch_size 512",
        "stream_interval": _MAX_THROUGHPUT,
        "cuda_graph_config.max_batch_size": _MAX_THROUGHPUT,
        "cuda_graph_config.enable_padding": _MAX_THROUGHPUT,
    },
)
"""NVIDIA's "B200 Max-throughput" recipe for Llama 4 Maverick FP8.

Two things are deliberately absent:

- speculative decoding: NVIDIA's max-throughput recipe runs Maverick without a
  draft model, so this preset does too (despite its name). Add a
  ``speculative_config`` table to combine it with EAGLE-3; ``--draft-model``
  alone is refused with this preset.
- ``--num_postprocess_workers 2``: that is trtllm-serve's detokenizer pool for
  its HTTP server; tokenwire streams token ids and detokenizes itself.
"""

PRESETS: Mapping[str, Preset] = {p.name: p for p in (MAVERICK_LATENCY, MAVERICK_THROUGHPUT)}


def for_release(preset: Preset, release: Release) -> Preset:
    """``preset`` in the vocabulary of ``release``, with what that release needs added.

    For 1.2.1 (``Release.eagle3_one_model_key``) an EAGLE-3 section also gets:

    - ``eagle3_one_model: true``: the drafter runs inside the target's CUDA
      graph, the guide's fast path (its 1.2-era text sets it; 1.3 has no other mode);
    - ``allow_advanced_sampling: true``: without it one-model EAGLE-3 decodes
      greedily whatever a request asks (PR #9885; automatic from 1.3, PR #14745);

    and the draft model goes under the key the release reads.
    """
    spec = preset.llm_args.get("speculative_config")
    if not isinstance(spec, Mapping):
        return preset
    translated = dict(spec)
    sources = dict(preset.sources)
    draft = translated.pop("speculative_model", None)
    draft_source = sources.pop("speculative_config.speculative_model", "")
    if draft is not None:
        translated[release.draft_model_key] = draft
        sources[f"speculative_config.{release.draft_model_key}"] = draft_source
    if release.eagle3_one_model_key:
        translated["eagle3_one_model"] = True
        sources["speculative_config.eagle3_one_model"] = f"{_BLOG_OLD} eagle3_one_model: true"
    if release.allow_advanced_sampling_key:
        translated["allow_advanced_sampling"] = True
        sources["speculative_config.allow_advanced_sampling"] = (
            "[pr9885] one-model EAGLE-3 samples only with it"
        )
    return dataclasses.replace(
        preset, llm_args={**preset.llm_args, "speculative_config": translated}, sources=sources
    )
