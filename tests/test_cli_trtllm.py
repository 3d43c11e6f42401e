"""``tokenwire`` with ``--engine trtllm`` where TensorRT-LLM is not installed (every machine here)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.cli_process import run

LATENCY = "maverick-fp8-eagle3-latency"


def test_serve_without_tensorrt_llm_exits_at_once_naming_how_to_get_it() -> None:
    started = time.monotonic()
    done = run("serve", "--engine", "trtllm", "--preset", LATENCY, "--port", "0")
    assert done.returncode != 0
    assert "nvcr.io/nvidia/tensorrt-llm/release" in done.stderr
    assert "pypi.nvidia.com" in done.stderr
    assert "server_listening" not in done.stderr  # nothing was started
    assert time.monotonic() - started < 60  # "at once": no model load, no port wait


def test_config_show_prints_the_effective_llm_arguments() -> None:
    done = run("config", "show", "--engine", "trtllm", "--preset", LATENCY, "--set", "max_seq_len=4096")
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    llm_args = shown["llm_args"]
    assert llm_args["model"] == "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8"
    assert llm_args["tensor_parallel_size"] == 8
    assert llm_args["speculative_config"]["max_draft_len"] == 3
    assert llm_args["max_seq_len"] == 4096
    assert shown["env"]["TRTLLM_ENABLE_PDL"] == "1"


def test_config_show_merges_a_file_and_paths(tmp_path: Path) -> None:
    config = tmp_path / "engine.toml"
    config.write_text("[llm_args.kv_cache_config]\nfree_gpu_memory_fraction = 0.6\n")
    paths = ["--model-path", "/models/target", "--draft-model-path", "/models/draft"]
    done = run(
        "config", "show", "--engine", "trtllm", "--preset", LATENCY, "--engine-config", str(config), *paths
    )
    assert done.returncode == 0, done.stderr
    llm_args = yaml.safe_load(done.stdout)["llm_args"]
    assert llm_args["kv_cache_config"]["free_gpu_memory_fraction"] == 0.6
    assert llm_args["kv_cache_config"]["enable_block_reuse"] is False  # deep-merged, not replaced
    assert llm_args["model"] == "/models/target"
    assert llm_args["speculative_config"]["speculative_model_dir"] == "/models/draft"  # 1.2.1's name


@pytest.mark.parametrize(
    ("version", "checked", "draft_key", "one_model"),
    [
        ("1.2.1", "TensorRT-LLM 1.2.1 (1.2.1 line)", "speculative_model_dir", True),
        ("1.3", "TensorRT-LLM 1.3.0rc27 (1.3 line)", "speculative_model", False),
        ("1.3.0rc25", "TensorRT-LLM 1.3.0rc25 (1.3 line)", "speculative_model", False),
    ],
)
def test_config_show_prints_a_valid_configuration_for_each_release(
    tmp_path: Path, version: str, checked: str, draft_key: str, one_model: bool
) -> None:
    done = run("config", "show", "--engine", "trtllm", "--preset", LATENCY, "--trtllm-version", version)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# tensorrt_llm.LLM arguments, checked against {checked}\n")
    speculative = yaml.safe_load(done.stdout)["llm_args"]["speculative_config"]
    assert speculative["decoding_type"] == "Eagle3" and draft_key in speculative
    assert ("eagle3_one_model" in speculative) is one_model
    assert ("allow_advanced_sampling" in speculative) is one_model
    # What it prints is itself a valid config file for that release.
    saved = tmp_path / "engine.yaml"
    saved.write_text(done.stdout)
    again = run(
        "config", "show", "--engine", "trtllm", "--engine-config", str(saved), "--trtllm-version", version
    )
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load(again.stdout)["llm_args"] == yaml.safe_load(done.stdout)["llm_args"]


def test_config_show_refuses_what_another_release_calls_differently() -> None:
    done = run(
        "config", "show", "--engine", "trtllm", "--preset", LATENCY, "--trtllm-version", "1.3",
        "--set", "speculative_config.eagle3_one_model=true",
    )  # fmt: skip
    assert done.returncode == 2
    assert "speculative_config.eagle3_one_model" in done.stderr and "one-model is the only" in done.stderr


@pytest.mark.parametrize("version", ["1.4.0rc1", "1.3.0rc20", "1.1.0", "latest"])
def test_unsupported_releases_are_named_with_the_supported_ones(version: str) -> None:
    done = run("config", "show", "--engine", "trtllm", "--preset", LATENCY, "--trtllm-version", version)
    assert done.returncode == 2
    assert "1.2.1 (stable; 1.2.x), 1.3 (1.3.0rc25 and later)" in done.stderr


def test_config_errors_name_the_key() -> None:
    unknown = run(
        "config", "show", "--engine", "trtllm", "--preset", LATENCY, "--set", "tensor_paralel_size=8"
    )
    assert unknown.returncode == 2
    assert "tensor_paralel_size" in unknown.stderr and "tensor_parallel_size" in unknown.stderr
    ill_typed = run(
        "config", "show", "--engine", "trtllm", "--preset", LATENCY, "--set", 'max_batch_size="lots"'
    )
    assert ill_typed.returncode == 2 and "max_batch_size" in ill_typed.stderr


def test_config_show_for_the_native_engine() -> None:
    done = run("config", "show", "--max-batch-size", "3")
    assert done.returncode == 0, done.stderr
    assert '"engine": "native"' in done.stdout and '"max_batch_size": 3' in done.stdout
