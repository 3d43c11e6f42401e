"""Settings, requests and a stream reader for the TensorRT-LLM adapter's tests against its test double."""

from __future__ import annotations

from pathlib import Path

from engines.contract import EngineOutput, EngineRequest, RequestId, SamplingParams, StoppingParams, TokenId
from engines.trtllm.engine import TrtLlmEngine
from engines.trtllm.settings import TrtLlmSettings
from engines.trtllm.versions import release_named

PROMPT = tuple(TokenId(t) for t in (1, 4093, 314, 260, 2682))
MAX_DRAFT_LEN = 3


def make_settings(model_dir: Path, release: str = "1.2.1", **overrides: object) -> TrtLlmSettings:
    """Settings as a 1.2.1 deployment of the latency preset would have them (1.3: its 1.3 shape)."""
    one_two = release == "1.2.1"
    speculative: dict[str, object] = {
        "decoding_type": "Eagle3",
        "max_draft_len": MAX_DRAFT_LEN,
        "speculative_model_dir" if one_two else "speculative_model": "/models/eagle3",
    }
    if one_two:
        speculative.update(eagle3_one_model=True, allow_advanced_sampling=True)
    llm_args: dict[str, object] = {
        "model": str(model_dir),
        "max_seq_len": 4096,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.5, "enable_block_reuse": True},
        "cuda_graph_config": {"max_batch_size": 8, "enable_padding": True},
        "moe_config": {"backend": "CUTLASS"},
        "speculative_config": speculative,
        "disable_overlap_scheduler": False,
        **overrides,
    }
    return TrtLlmSettings(
        llm_args=llm_args, env={"TRTLLM_ENABLE_PDL": "1"}, preset="test", release=release_named(release)
    )


def request(
    request_id: str = "r1",
    *,
    prompt: tuple[TokenId, ...] = PROMPT,
    max_tokens: int = 16,
    sampling: SamplingParams | None = None,
    stopping: StoppingParams | None = None,
    logprobs: bool = False,
    top_logprobs: int = 0,
) -> EngineRequest:
    return EngineRequest(
        request_id=RequestId(request_id),
        prompt_token_ids=prompt,
        sampling=sampling or SamplingParams(temperature=0.0),
        stopping=stopping or StoppingParams(max_tokens=max_tokens, ignore_eos=True),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
    )


async def read_all(engine: TrtLlmEngine, req: EngineRequest) -> list[EngineOutput]:
    stream = engine.generate(req)
    try:
        return [output async for output in stream]
    finally:
        await stream.aclose()
