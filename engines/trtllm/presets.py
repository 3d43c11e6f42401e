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

from collections.abc import Mapping
from dataclasses import dataclass, field

MAVERICK_FP8 = "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8"
MAVERICK_EAGLE3 = "nvidia/Llama-4-Maverick-17B-128E-Eagle3"


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    summary: str
    """One line for ``--help`` and error messages."""
    llm_args: Mapping[str, object]
    env: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    """Where each value comes from (NVIDIA TensorRT-LLM repository paths, 1.2.0rc2)."""


MAVERICK_LATENCY = Preset(
    name="maverick-fp8-eagle3-latency",
    summary="Llama 4 Maverick FP8 + EAGLE-3 (one-model, 3 drafts), TP8, min-latency: 1-2 concurrent users",
    llm_args={
        "model": MAVERICK_FP8,
        "trust_remote_code": True,
        "tensor_parallel_size": 8,
        "moe_expert_parallel_size": 1,
        "enable_attention_dp": False,
        "enable_min_latency": True,
        "enable_autotuner": False,
        "cuda_graph_config": {"max_batch_size": 8},
        "kv_cache_config": {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.75},
        "speculative_config": {
            # EAGLE-3 is decoding_type "Eagle" in 1.2.0rc2; eagle3_one_model runs the
            # drafter inside the target's CUDA graph, the fast path for Maverick.
            "decoding_type": "Eagle",
            "max_draft_len": 3,
            "speculative_model_dir": MAVERICK_EAGLE3,
            "eagle3_one_model": True,
        },
    },
    env={
        "TRTLLM_ENABLE_PDL": "1",
        # NVIDIA's guide sets this: parallel weight loading conflicted with min-latency mode.
        "TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": "True",
    },
    sources=(
        "docs/source/blogs/tech_blog/blog6_Llama4_maverick_eagle_guide.md, 'Download Artifacts' "
        "(models) and 'Step 4: Start the TensorRT LLM server' (every other value); same text in "
        "the 1.2.0rc2 docs, blogs/tech_blog/blog6_Llama4_maverick_eagle_guide.html",
    ),
)
"""NVIDIA's "Llama4 Maverick + Eagle3" guide (the >1000 tokens/s/user setup on 8x B200).

From the guide's ``trtllm-serve`` command: ``--tp_size 8 --ep_size 1
--trust_remote_code --kv_cache_free_gpu_memory_fraction 0.75``, env
``TRTLLM_ENABLE_PDL=1`` and ``TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL=True``,
and the extra options ``enable_autotuner: false``, ``enable_attention_dp:
false``, ``enable_min_latency: true``, ``cuda_graph_config.max_batch_size: 8``,
``speculative_config`` {``decoding_type: Eagle``, ``max_draft_len: 3``,
``speculative_model_dir``, ``eagle3_one_model: true``},
``kv_cache_config.enable_block_reuse: false``. The guide warns that tokens/s
per user "degrades rapidly" as concurrency grows: use the throughput preset for
many users.
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
    sources=(
        "examples/models/core/llama4/README.md, 'B200 Max-throughput' (extra-llm-api-config.yml "
        "and the trtllm-serve command)",
    ),
)
"""NVIDIA's "B200 Max-throughput" recipe for Llama 4 Maverick FP8.

From the recipe: extra options ``enable_attention_dp: true``,
``stream_interval: 2``, ``cuda_graph_config`` {``max_batch_size: 512``,
``enable_padding: true``}; ``trtllm-serve`` flags ``--max_batch_size 512
--tp_size 8 --ep_size 8 --trust_remote_code``. Two things are deliberately
absent:

- speculative decoding: NVIDIA's max-throughput recipe runs Maverick without a
  draft model, so this preset does too (despite its name). Add a
  ``speculative_config`` table to combine it with EAGLE-3; ``--draft-model``
  alone is refused with this preset.
- ``--num_postprocess_workers 2``: that is trtllm-serve's detokenizer pool for
  its HTTP server; tokenwire streams token ids and detokenizes itself.
"""

PRESETS: Mapping[str, Preset] = {p.name: p for p in (MAVERICK_LATENCY, MAVERICK_THROUGHPUT)}
