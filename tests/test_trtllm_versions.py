"""The TensorRT-LLM releases tokenwire supports, and settings validated for the one that will run them.

Nothing here imports tensorrt_llm; the release facts are in engines/trtllm/versions.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.trtllm.capabilities import unsupported_fields
from engines.trtllm.settings import SettingsError, TrtLlmSettings, load_settings
from engines.trtllm.versions import UnsupportedTrtLlmVersion, release_for, release_named

LATENCY = "maverick-fp8-eagle3-latency"


def load(
    version: str,
    *overrides: str,
    preset: str | None = LATENCY,
    config_file: Path | None = None,
    draft_model: str | None = None,
) -> TrtLlmSettings:
    return load_settings(
        preset=preset,
        config_file=config_file,
        overrides=overrides,
        model=None if preset else "/models/m",
        draft_model=draft_model,
        release=release_named(version),
    )


@pytest.mark.parametrize(
    ("version", "line"),
    [
        ("1.2.1", "1.2.1"),
        ("1.2.0", "1.2.1"),
        ("1.2.1.post1", "1.2.1"),
        ("1.3.0rc25", "1.3"),
        ("1.3.0rc27", "1.3"),
        ("1.3.0rc29.post1", "1.3"),
        ("1.3.0", "1.3"),
    ],
)
def test_versions_map_to_their_line(version: str, line: str) -> None:
    release = release_for(version)
    assert release.line == line and release.name == f"TensorRT-LLM {version.split('.post')[0]}"


@pytest.mark.parametrize(
    "version", ["1.2.0rc8", "1.3.0rc20", "1.3.0rc24", "1.4.0rc1", "1.1.0", "0.21.0", "x"]
)
def test_other_versions_are_refused_naming_the_supported_ones(version: str) -> None:
    with pytest.raises(UnsupportedTrtLlmVersion, match=r"1\.2\.1 \(stable; 1\.2\.x\), 1\.3 \(1\.3\.0rc25"):
        release_for(version)


@pytest.mark.parametrize(
    ("version", "override", "words"),
    [
        ("1.3", "speculative_config.eagle3_one_model=true", "one-model is the only EAGLE-3 mode"),
        ("1.3", "speculative_config.allow_advanced_sampling=true", "a no-op in TensorRT-LLM 1.3.0rc27"),
        ("1.3", "speculative_config.acceptance_window=4", "calls it 'acceptance_rate_window_size'"),
        ("1.3", "speculative_config.acceptance_rate_threshold=1.5", "must be at most 1"),
        ("1.3", "sampler_type=TRTLLMSampler", "sampler_type"),
        ("1.3", "moe_config.backend=WIDEEP", "moe_config.backend"),
        ("1.3", "speculative_config.speculative_model_dir=/other", "names the draft model again"),
        ("1.2.1", "speculative_config.speculative_model=/x", "calls it 'speculative_model_dir'"),
        (
            "1.2.1",
            "speculative_config.acceptance_rate_threshold=0.5",
            "calls it 'acceptance_length_threshold'",
        ),
        ("1.2.1", "speculative_config.enable_penalty=true", "exists from TensorRT-LLM 1.3 on"),
        ("1.2.1", "sampler_type=TRTLLMSampler", "TRTLLMSampler does not run speculative decoding"),
        ("1.2.1", "batch_wait_max_tokens_ratio=2", "must be at most 1"),
    ],
)
def test_keys_of_another_release_are_refused_with_what_to_write(
    version: str, override: str, words: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load(version, override)
    assert words in str(raised.value)
    assert override.split("=")[0].rsplit(".", 1)[-1] in str(raised.value)


def test_each_release_accepts_its_own_spelling() -> None:
    newer = load(
        "1.3",
        "speculative_config.acceptance_rate_window_size=8",
        "speculative_config.acceptance_rate_threshold=0.4",
        "speculative_config.enable_penalty=true",
        "moe_config.backend=AUTO",
    )
    assert newer.llm_args["moe_config"] == {"backend": "AUTO"}
    older = load("1.2.1", "speculative_config.acceptance_window=8", "sampler_type=TorchSampler")
    assert older.llm_args["sampler_type"] == "TorchSampler"
    plain = load("1.2.1", "sampler_type=TRTLLMSampler", preset=None)  # no speculation: fine
    assert plain.llm_args["sampler_type"] == "TRTLLMSampler"


def test_the_draft_model_flag_replaces_either_spelling(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text('[llm_args.speculative_config]\nspeculative_model_dir = "/from/file"\n')
    settings = load("1.3", config_file=config, draft_model="/from/flag")
    speculative = settings.llm_args["speculative_config"]
    assert isinstance(speculative, dict)
    assert speculative["speculative_model"] == "/from/flag" and "speculative_model_dir" not in speculative


def test_environment_reaches_the_mpi_workers_through_env_overrides() -> None:
    settings = load(
        "1.2.1", "env.TLLM_LOG_LEVEL=INFO", "env.NCCL_DEBUG=WARN", "env_overrides.NCCL_DEBUG=INFO"
    )
    # TRTLLM*/TLLM* are forwarded by TensorRT-LLM itself; others need env_overrides; explicit ones win.
    assert settings.llm_args["env_overrides"] == {
        "TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": "True",
        "NCCL_DEBUG": "INFO",
    }


def fields(version: str, *overrides: str, preset: str | None = LATENCY) -> dict[str, float | None]:
    settings = load(version, *overrides, preset=preset)
    assert settings.release is not None
    return {item.field: item.allowed for item in unsupported_fields(settings.llm_args, settings.release)}


def test_what_each_configuration_refuses() -> None:
    penalties = {
        "sampling.repetition_penalty": 1.0,
        "sampling.presence_penalty": 0.0,
        "sampling.frequency_penalty": 0.0,
    }
    assert fields("1.2.1") == {
        "sampling.top_p": 1.0,
        "sampling.min_p": 0.0,
        "sampling.logit_bias": None,
        "sampling.seed": None,
        **penalties,
        "speculative.draft_length": 3.0,
    }
    assert fields("1.2.1", "speculative_config.allow_advanced_sampling=false") == {
        "sampling.temperature": 0.0,
        "sampling.top_p": 1.0,
        "sampling.top_k": None,
        "sampling.min_p": 0.0,
        "sampling.logit_bias": None,
        "sampling.seed": None,
        **penalties,
        "speculative.draft_length": 3.0,
    }
    assert fields("1.2.1", preset=None) == {
        "sampling.seed": None,
        **penalties,
        "speculative.draft_length": None,
    }
    assert fields("1.2.1", "sampler_type=TRTLLMSampler", preset=None) == {"speculative.draft_length": None}
    assert fields("1.3") == {"sampling.min_p": 0.0, **penalties, "speculative.draft_length": 3.0}
    assert fields("1.3", "speculative_config.enable_penalty=true") == {
        "sampling.min_p": 0.0,
        "speculative.draft_length": 3.0,
    }
    assert fields("1.3", preset=None) == {"speculative.draft_length": None}
