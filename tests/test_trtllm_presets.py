"""TensorRT-LLM settings: presets, config files, --set overrides, validation, rendering.

Nothing here imports tensorrt_llm: the settings are plain data checked
against engines.trtllm.schema, so these run on any machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.trtllm.presets import PRESETS
from engines.trtllm.settings import SettingsError, TrtLlmSettings, load_settings, render_settings
from engines.trtllm.versions import release_named

LATENCY = "maverick-fp8-eagle3-latency"
THROUGHPUT = "maverick-fp8-eagle3-throughput"
MAVERICK = "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8"
EAGLE3 = "nvidia/Llama-4-Maverick-17B-128E-Eagle3"


def load(
    preset: str | None = LATENCY,
    *,
    config_file: Path | None = None,
    overrides: tuple[str, ...] = (),
    model: str | None = None,
    draft_model: str | None = None,
    version: str = "1.2.1",
) -> TrtLlmSettings:
    return load_settings(
        preset=preset,
        config_file=config_file,
        overrides=overrides,
        model=model,
        draft_model=draft_model,
        release=release_named(version),
    )


def section(settings: TrtLlmSettings, name: str) -> dict[str, object]:
    value = settings.llm_args[name]
    assert isinstance(value, dict)
    return value


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LATENCY_COMMON: dict[str, object] = {
    "model": MAVERICK,
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
    # Not forwarded to TensorRT-LLM's MPI workers by name (only TRTLLM*/TLLM* are).
    "env_overrides": {"TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": "True"},
}


@pytest.mark.parametrize(
    ("version", "speculative"),
    [
        (
            "1.2.1",
            {
                "decoding_type": "Eagle3",
                "max_draft_len": 3,
                "speculative_model_dir": EAGLE3,
                "eagle3_one_model": True,
                "allow_advanced_sampling": True,  # else one-model EAGLE-3 decodes greedily on 1.2.x
            },
        ),
        ("1.3", {"decoding_type": "Eagle3", "max_draft_len": 3, "speculative_model": EAGLE3}),
    ],
)
def test_latency_preset_is_nvidias_guide_in_each_releases_words(
    version: str, speculative: dict[str, object]
) -> None:
    settings = load(LATENCY, version=version)

    assert settings.preset == LATENCY
    assert settings.llm_args == {**LATENCY_COMMON, "speculative_config": speculative}
    assert settings.env == {"TRTLLM_ENABLE_PDL": "1", "TRT_LLM_DISABLE_LOAD_WEIGHTS_IN_PARALLEL": "True"}
    assert settings.model == MAVERICK
    assert settings.llm_args["max_batch_size"] == section(settings, "cuda_graph_config")["max_batch_size"]


@pytest.mark.parametrize("version", ["1.2.1", "1.3"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_value_cites_its_source(version: str, name: str) -> None:
    settings = load(name, version=version)
    leaves = set(_leaves(dict(settings.llm_args))) - {"env_overrides"}  # derived from env
    leaves |= {f"env.{key}" for key in settings.env}
    assert leaves == set(settings.sources)
    assert all(source.startswith("[") for source in settings.sources.values())
    rendered = render_settings(settings)
    for tag in {source.split("]")[0] + "]" for source in settings.sources.values()}:
        assert f"#   {tag} = NVIDIA/TensorRT-LLM" in rendered or f"#   {tag} = the same guide" in rendered


def _leaves(table: dict[str, object], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict) and key != "env_overrides":
            found += _leaves(value, f"{prefix}{key}.")
        else:
            found.append(prefix + key)
    return found


def test_throughput_preset_is_nvidias_max_throughput_recipe() -> None:
    settings = load(THROUGHPUT)

    assert settings.llm_args == {
        "model": MAVERICK,
        "trust_remote_code": True,
        "tensor_parallel_size": 8,
        "moe_expert_parallel_size": 8,
        "enable_attention_dp": True,
        "max_batch_size": 512,
        "stream_interval": 2,
        "cuda_graph_config": {"max_batch_size": 512, "enable_padding": True},
    }
    assert settings.env == {}


def test_loading_never_mutates_the_preset() -> None:
    load(LATENCY, overrides=("kv_cache_config.free_gpu_memory_fraction=0.5",), draft_model="/d")

    preset_kv = PRESETS[LATENCY].llm_args["kv_cache_config"]
    assert preset_kv == {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.75}


def test_toml_file_deep_merges_over_the_preset(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "engine.toml",
        """
        [llm_args]
        max_seq_len = 8192
        [llm_args.kv_cache_config]
        free_gpu_memory_fraction = 0.6
        [env]
        TRTLLM_ENABLE_PDL = 0
        """,
    )

    settings = load(LATENCY, config_file=config)

    # The file's one kv key replaced one value; the preset's other kv key survived.
    assert section(settings, "kv_cache_config") == {
        "enable_block_reuse": False,
        "free_gpu_memory_fraction": 0.6,
    }
    assert settings.llm_args["max_seq_len"] == 8192
    assert section(settings, "speculative_config")["max_draft_len"] == 3
    assert settings.env["TRTLLM_ENABLE_PDL"] == "0"


def test_yaml_file_with_preset_key_chooses_the_preset(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "engine.yaml",
        f"preset: {THROUGHPUT}\nllm_args:\n  cuda_graph_config:\n    max_batch_size: 256\n",
    )

    settings = load(None, config_file=config)

    assert settings.preset == THROUGHPUT
    assert section(settings, "cuda_graph_config") == {"max_batch_size": 256, "enable_padding": True}
    assert settings.llm_args["moe_expert_parallel_size"] == 8


def test_preset_flag_beats_the_files_preset_key(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.yml", f"preset: {THROUGHPUT}\n")

    assert load(LATENCY, config_file=config).preset == LATENCY


def test_yaml_null_switches_a_section_off(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.yaml", "llm_args:\n  cuda_graph_config: null\n")

    assert load(LATENCY, config_file=config).llm_args["cuda_graph_config"] is None


def test_set_flags_win_over_file_and_preset_in_order(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.toml", "[llm_args.kv_cache_config]\nfree_gpu_memory_fraction = 0.6\n")

    settings = load(
        LATENCY,
        config_file=config,
        overrides=(
            "kv_cache_config.free_gpu_memory_fraction=0.7",
            "kv_cache_config.free_gpu_memory_fraction=0.8",
            "enable_attention_dp=true",
            "kv_cache_config.dtype=fp8",
            "env.TRTLLM_ENABLE_PDL=0",
        ),
    )

    assert section(settings, "kv_cache_config") == {
        "enable_block_reuse": False,
        "free_gpu_memory_fraction": 0.8,
        "dtype": "fp8",
    }
    assert settings.llm_args["enable_attention_dp"] is True
    assert settings.env["TRTLLM_ENABLE_PDL"] == "0"


def test_model_and_draft_paths_win_over_everything(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.toml", '[llm_args]\nmodel = "/from/file"\n')

    settings = load(
        LATENCY,
        config_file=config,
        overrides=("speculative_config.speculative_model_dir=/from/flag",),
        model="/models/maverick",
        draft_model="/models/eagle3",
    )

    assert settings.model == "/models/maverick"
    assert section(settings, "speculative_config") == {
        "decoding_type": "Eagle3",
        "max_draft_len": 3,
        "speculative_model_dir": "/models/eagle3",
        "eagle3_one_model": True,
        "allow_advanced_sampling": True,
    }


def test_model_alone_is_enough_without_a_preset() -> None:
    settings = load(None, model="/models/llama", overrides=("tensor_parallel_size=2",))

    assert settings.llm_args == {"model": "/models/llama", "tensor_parallel_size": 2}
    assert settings.preset is None


def test_no_model_is_an_error() -> None:
    with pytest.raises(SettingsError, match="no model"):
        load(None)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError) as error:
        load("maverick-fast")

    assert "'maverick-fast'" in str(error.value)
    assert LATENCY in str(error.value)
    assert THROUGHPUT in str(error.value)


def test_draft_model_needs_a_speculative_section() -> None:
    with pytest.raises(SettingsError, match="no speculative decoding is configured"):
        load(THROUGHPUT, draft_model="/models/eagle3")


def test_unknown_nested_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(SettingsError) as error:
        load(overrides=("kv_cache_config.enable_block_resue=true",))

    message = str(error.value)
    assert "kv_cache_config.enable_block_resue" in message
    assert "--set kv_cache_config.enable_block_resue=true" in message
    assert "did you mean 'kv_cache_config.enable_block_reuse'" in message


def test_known_key_in_the_wrong_section_is_pointed_home(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.toml", "[llm_args]\nfree_gpu_memory_fraction = 0.5\n")

    with pytest.raises(SettingsError) as error:
        load(config_file=config)

    assert f"free_gpu_memory_fraction (from config file {config})" in str(error.value)
    assert "did you mean 'kv_cache_config.free_gpu_memory_fraction'" in str(error.value)


def test_unknown_top_level_file_key_is_rejected(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.yaml", "tensor_parallel_size: 4\n")

    with pytest.raises(SettingsError, match=r"top-level key 'tensor_parallel_size'.*under 'llm_args'"):
        load(config_file=config)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "tensor_parallel_size=eight",
            "tensor_parallel_size (from --set tensor_parallel_size=eight): "
            "expected an integer, got string 'eight'",
        ),
        ('max_batch_size="8"', 'max_batch_size (from --set max_batch_size="8"): expected an integer'),
        (
            "enable_attention_dp=yes",
            "enable_attention_dp (from --set enable_attention_dp=yes): expected a boolean",
        ),
        ("kv_cache_config.free_gpu_memory_fraction=1.5", "must be at most 1"),
        ("cuda_graph_config.batch_sizes=[1, 2, true]", "cuda_graph_config.batch_sizes"),
        ("moe_config.backend=CUTLAS", "moe_config.backend"),
        ("speculative_config.decoding_type=Medusa", "must be one of 'Eagle', 'Eagle3'"),
        ("batch_wait_max_tokens_ratio=1.5", "must be at most 1"),
        ("moe_config.backend=AUTO", "moe_config.backend"),  # 1.2.1 has no AUTO
        ('env_overrides={"A": 1}', "env_overrides"),
        ("kv_cache_config=8", "kv_cache_config (from --set kv_cache_config=8): must be a table"),
    ],
)
def test_ill_typed_value_names_key_source_and_expected_type(override: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        load(overrides=(override,))

    assert expected in str(error.value)


@pytest.mark.parametrize("key", ["tensor_parallel_size", "max_batch_size", "stream_interval"])
def test_bool_is_not_accepted_as_an_int(key: str) -> None:
    with pytest.raises(SettingsError, match=f"{key} .*expected an integer.*got boolean true"):
        load(overrides=(f"{key}=true",))


def test_bool_from_a_file_is_not_an_int_either(tmp_path: Path) -> None:
    config = write(tmp_path, "engine.toml", "[llm_args.cuda_graph_config]\nmax_batch_size = true\n")

    with pytest.raises(SettingsError, match=r"cuda_graph_config\.max_batch_size \(from config file"):
        load(config_file=config)


def test_int_is_accepted_where_a_float_is_expected() -> None:
    settings = load(overrides=("kv_cache_config.free_gpu_memory_fraction=1",))

    assert section(settings, "kv_cache_config")["free_gpu_memory_fraction"] == 1


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        load(overrides=("tensor_parallel_size=x", "stream_interval=0", "bogus=1"))

    message = str(error.value)
    assert "tensor_parallel_size" in message
    assert "stream_interval" in message
    assert "bogus" in message


def test_eagle_needs_draft_length_and_draft_model() -> None:
    with pytest.raises(SettingsError) as error:
        load(THROUGHPUT, overrides=("speculative_config.decoding_type=Eagle",))

    message = str(error.value)
    assert "speculative_config.max_draft_len" in message
    assert "speculative_config.speculative_model_dir" in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("engine.json", "{}", "unknown format"),
        ("engine.toml", "[llm_args\n", "not valid TOML"),
        ("engine.yaml", "llm_args: [unclosed\n", "not valid YAML"),
        ("engine.yaml", "- a list\n", "expected a table"),
        ("engine.yaml", "llm_args:\n  1: 2\n", "keys must be strings"),
        ("engine.toml", "[env]\nTRTLLM_ENABLE_PDL = true\n", "env.TRTLLM_ENABLE_PDL"),
    ],
)
def test_malformed_files_are_rejected_with_their_path(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    config = write(tmp_path, name, text)

    with pytest.raises(SettingsError) as error:
        load(config_file=config)

    assert expected in str(error.value)
    assert str(config) in str(error.value)


def test_missing_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load(config_file=tmp_path / "absent.toml")


@pytest.mark.parametrize("override", ["no_equals_sign", "=1", "a..b=1", "env.A.B=1"])
def test_malformed_override_is_rejected(override: str) -> None:
    with pytest.raises(SettingsError, match="--set"):
        load(overrides=(override,))


def test_render_is_deterministic_sorted_and_shows_effective_values() -> None:
    first = render_settings(load(LATENCY, overrides=("kv_cache_config.free_gpu_memory_fraction=0.8",)))
    second = render_settings(load(LATENCY, overrides=("kv_cache_config.free_gpu_memory_fraction=0.8",)))

    assert first == second
    assert f"# preset: {LATENCY}" in first
    assert "free_gpu_memory_fraction: 0.8" in first
    assert "speculative_model_dir: nvidia/Llama-4-Maverick-17B-128E-Eagle3" in first
    assert "TRTLLM_ENABLE_PDL: '1'" in first
    lines = first.splitlines()
    assert (
        lines.index("  cuda_graph_config:")
        < lines.index("  kv_cache_config:")
        < lines.index("  model: " + MAVERICK)
    )


def test_rendered_settings_load_back_as_a_config_file(tmp_path: Path) -> None:
    original = load(THROUGHPUT, overrides=("max_seq_len=4096",))
    config = write(tmp_path, "shown.yaml", render_settings(original))

    reloaded = load(None, config_file=config)

    assert reloaded.llm_args == original.llm_args
    assert reloaded.env == original.env
