"""The TensorRT-LLM adapter's start-up, against its test double (tests/trtllm_double.py:
the real ``tensorrt_llm`` needs an NVIDIA GPU and cannot be installed here).

Whether the package is there; settings becoming the ``LLM(...)`` arguments (the real
classes, in each release's shape); what the started engine reports; settings and presets
for one release never starting on another. The tokenizer is real: SmolLM2's, saved as a
Hugging Face tokenizer directory, so the double's "model" produces ids of a real vocabulary.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

from engines.contract import EngineError, SpeculationMethod, TokenId
from engines.trtllm.availability import (
    CHECKED_AGAINST,
    TrtLlmUnavailable,
    check_installed,
    require_tensorrt_llm,
)
from engines.trtllm.engine import TrtLlmEngine
from engines.trtllm.llm_build import TrtLlmConfigError, llm_kwargs
from engines.trtllm.presets import PRESETS
from engines.trtllm.settings import TrtLlmSettings, load_settings
from engines.trtllm.versions import installed_version, release_named
from tests.trtllm_double import (
    DoubleCudaGraphConfig,
    DoubleEagle3DecodingConfig,
    DoubleEagleDecodingConfig,
    DoubleKvCacheConfig,
    DoubleLLM,
    DoubleMoeConfig,
    DoubleState,
    installed,
)
from tests.trtllm_requests import MAX_DRAFT_LEN, make_settings

pytest_plugins = ["tests.trtllm_fixtures"]


# --- availability --------------------------------------------------------------------------------


def test_without_the_package_require_names_the_ngc_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # makes `import tensorrt_llm` fail
    with pytest.raises(TrtLlmUnavailable) as raised:
        require_tensorrt_llm()
    message = str(raised.value)
    assert "nvcr.io/nvidia/tensorrt-llm/release:1.2.1" in message
    assert "tensorrt-llm==1.2.1 --extra-index-url https://pypi.nvidia.com" in message
    assert CHECKED_AGAINST in message
    with pytest.raises(TrtLlmUnavailable):
        check_installed()
    assert isinstance(raised.value, EngineError)


def test_with_the_double_require_imports_it(trt: DoubleState) -> None:
    check_installed()
    assert require_tensorrt_llm().__version__ == "1.2.1"
    assert installed_version() == "1.2.1"  # from the package metadata, without importing


# --- settings → LLM(...) -------------------------------------------------------------------------


def test_nested_sections_become_the_real_classes(trt: DoubleState, model_dir: Path) -> None:
    llmapi = importlib.import_module("tensorrt_llm.llmapi")
    kwargs = llm_kwargs(make_settings(model_dir).llm_args, llmapi)
    kv, graphs, moe, spec = (
        kwargs[k] for k in ("kv_cache_config", "cuda_graph_config", "moe_config", "speculative_config")
    )
    assert isinstance(kv, DoubleKvCacheConfig) and kv.fields == {
        "free_gpu_memory_fraction": 0.5,
        "enable_block_reuse": True,
    }
    assert isinstance(graphs, DoubleCudaGraphConfig) and graphs.fields == {
        "max_batch_size": 8,
        "enable_padding": True,
    }
    assert isinstance(moe, DoubleMoeConfig) and moe.fields == {"backend": "CUTLASS"}
    assert type(spec) is DoubleEagle3DecodingConfig  # decoding_type is the discriminator, not a field
    assert spec.fields == {
        "max_draft_len": 3,
        "speculative_model_dir": "/models/eagle3",
        "eagle3_one_model": True,
        "allow_advanced_sampling": True,
    }
    assert kwargs["max_seq_len"] == 4096 and kwargs["disable_overlap_scheduler"] is False

    eagle = llm_kwargs(
        {"model": "m", "speculative_config": {"decoding_type": "Eagle", "max_draft_len": 2}}, llmapi
    )
    assert type(eagle["speculative_config"]) is DoubleEagleDecodingConfig
    assert llm_kwargs({"model": "m", "cuda_graph_config": None}, llmapi)["cuda_graph_config"] is None


@pytest.mark.parametrize(
    ("llm_args", "message"),
    [
        ({"lora_config": {"max_lora_rank": 8}}, "llm_args.lora_config is a nested section"),
        ({"speculative_config": {"decoding_type": "Medusa"}}, "decoding_type must be one of Eagle, Eagle3"),
        ({"kv_cache_config": {"free_gpu_memory_fraction": 0.5, "no_such_field": 1}}, "no_such_field"),
    ],
)
def test_unusable_sections_are_refused_clearly(
    trt: DoubleState, llm_args: dict[str, object], message: str
) -> None:
    llmapi = importlib.import_module("tensorrt_llm.llmapi")
    with pytest.raises(TrtLlmConfigError, match=message):
        llm_kwargs({"model": "m", **llm_args}, llmapi)


async def test_start_applies_env_before_import_and_builds_the_llm(
    engine: TrtLlmEngine, trt: DoubleState
) -> None:
    assert trt.env_at_import is not None and trt.env_at_import["TRTLLM_ENABLE_PDL"] == "1"
    kwargs = trt.llm.kwargs
    assert isinstance(kwargs["kv_cache_config"], DoubleKvCacheConfig)
    assert isinstance(kwargs["speculative_config"], DoubleEagle3DecodingConfig)
    assert kwargs["max_batch_size"] == 4  # not in llm_args: the constructor's value is passed on
    info = engine.info
    assert (info.engine_name, info.model_name, info.context_length) == (
        "trtllm",
        engine_model_name(engine),
        4096,
    )
    assert info.vocab_size == 49152 and info.max_batch_size == 4
    assert info.speculative.method is SpeculationMethod.EAGLE3
    assert info.speculative.draft_length == MAX_DRAFT_LEN
    assert engine.tokenizer.eos_token_ids == {TokenId(2), TokenId(0)}  # tokenizer + generation_config.json
    # Byte-level BPE, checked against transformers' decode: detokenization needs no decode calls.
    pieces = engine.tokenizer.byte_pieces
    assert pieces is not None and len(pieces) == info.vocab_size


def engine_model_name(engine: TrtLlmEngine) -> str:
    return Path(str(engine._settings.llm_args["model"])).name


async def test_context_length_falls_back_to_the_model_config(trt: DoubleState, model_dir: Path) -> None:
    settings = make_settings(model_dir, max_batch_size=64)
    args = {k: v for k, v in settings.llm_args.items() if k != "max_seq_len"}
    engine = TrtLlmEngine(dataclasses.replace(settings, llm_args=args), max_batch_size=4)
    await engine.start()
    try:
        assert engine.info.max_batch_size == 64  # the settings win over the constructor
        assert engine.info.context_length == 8192  # the double's LLM.args.max_seq_len (TensorRT-LLM's own)
    finally:
        await engine.shutdown()


# --- releases: settings for one release never start on another ------------------------------------


async def test_settings_for_another_release_refuse_to_start(model_dir: Path) -> None:
    with installed("1.2.1"):
        engine = TrtLlmEngine(make_settings(model_dir, release="1.3"), max_batch_size=4)
        with pytest.raises(
            TrtLlmConfigError, match=r"checked against TensorRT-LLM 1\.3\.0rc27.*1\.2\.1 is imported"
        ):
            await engine.start()


@pytest.mark.parametrize("version", ["1.2.1", "1.3.0rc27"])
def test_each_preset_builds_the_real_shaped_classes_of_its_release(version: str) -> None:
    with installed(version) as state:
        llmapi = importlib.import_module("tensorrt_llm.llmapi")
        for name in PRESETS:
            settings = _preset_settings(name, installed_version() or "")
            DoubleLLM(**llm_kwargs(settings.llm_args, llmapi))
        assert len(state.llms) == len(PRESETS)
        for llm in state.llms:
            llm.shutdown()


def test_a_preset_for_one_release_is_refused_by_the_next() -> None:
    """The 1.3 classes reject 1.2.1's eagle3_one_model, as the strict pydantic models do."""
    with installed("1.3.0rc27"):
        llmapi = importlib.import_module("tensorrt_llm.llmapi")
        old = _preset_settings("maverick-fp8-eagle3-latency", "1.2.1")
        with pytest.raises(TrtLlmConfigError, match="eagle3_one_model"):
            llm_kwargs(old.llm_args, llmapi)


def _preset_settings(name: str, version: str) -> TrtLlmSettings:
    return load_settings(
        preset=name,
        config_file=None,
        overrides=(),
        model=None,
        draft_model=None,
        release=release_named(version),
    )
