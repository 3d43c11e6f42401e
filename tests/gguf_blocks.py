"""GGUF blocks for the kernel tests: random ones, SmolLM2's own, and gguf-py's decoding of them.

Shared by test_qkernels.py (fp32 activations) and test_q8act_kernels.py (int8 activations):
both check the kernels against gguf-py, the GGUF format's own Python implementation.
"""

from __future__ import annotations

import gguf
import numpy as np
import numpy.typing as npt
import torch

from engines.native.matrices import QuantKind
from engines.native.weights import default_gguf_path

Blocks = npt.NDArray[np.uint8]

GGUF_TYPES = {QuantKind.Q4_1: gguf.GGMLQuantizationType.Q4_1, QuantKind.Q8_0: gguf.GGMLQuantizationType.Q8_0}

REAL_TENSORS = ("blk.3.attn_q.weight", "blk.7.ffn_down.weight", "blk.11.ffn_up.weight", "token_embd.weight")
"""Q4_1 layers of three shapes and the Q8_0 embedding (also the output head)."""


def random_blocks(kind: QuantKind, rows: int, cols: int, seed: int) -> Blocks:
    """GGUF blocks ``[rows, cols / 32 * block_bytes]``: random values, realistic fp16 scales (and
    Q4_1 mins of about -8 d)."""
    rng = np.random.default_rng(seed)
    n_blocks = cols // 32
    blocks = np.zeros((rows, n_blocks, kind.block_bytes), dtype=np.uint8)
    scales = rng.uniform(1e-3, 5e-2, size=(rows, n_blocks, kind.scales)).astype(np.float16)
    if kind is QuantKind.Q4_1:
        scales[:, :, 1] = -scales[:, :, 1] * 8  # m: the block's minimum, about -8 d
    blocks[:, :, : 2 * kind.scales] = scales.view(np.uint8).reshape(rows, n_blocks, -1)
    blocks[:, :, 2 * kind.scales :] = rng.integers(0, 256, size=(rows, n_blocks, kind.value_bytes))
    return blocks.reshape(rows, -1)


def dequantized(kind: QuantKind, blocks: Blocks, cols: int) -> torch.Tensor:
    """gguf-py's dequantization of ``blocks``: fp32 ``[rows, cols]``."""
    values = gguf.quants.dequantize(blocks, GGUF_TYPES[kind])
    return torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(blocks.shape[0], cols).copy())


def real_tensors(embedding_rows: int | None = None) -> dict[str, tuple[QuantKind, Blocks, int]]:
    """``REAL_TENSORS`` from the model's GGUF: name -> (kind, blocks, columns); the embedding cut to
    its first ``embedding_rows`` rows when given (a float64 reference of all 49152 is slow)."""
    reader = gguf.GGUFReader(str(default_gguf_path()))
    kinds = {v: k for k, v in GGUF_TYPES.items()}
    found: dict[str, tuple[QuantKind, Blocks, int]] = {}
    for tensor in reader.tensors:
        if tensor.name in REAL_TENSORS:
            blocks = np.asarray(tensor.data, dtype=np.uint8).reshape(int(tensor.shape[1]), -1)
            if tensor.name == "token_embd.weight" and embedding_rows is not None:
                blocks = blocks[:embedding_rows]
            found[tensor.name] = (
                kinds[tensor.tensor_type],
                np.ascontiguousarray(blocks),
                int(tensor.shape[0]),
            )
    assert set(found) == set(REAL_TENSORS)
    return found
