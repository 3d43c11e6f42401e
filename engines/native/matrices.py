"""Weight matrices and the kernels that multiply by them: GGUF blocks (``q``) or dense fp32.

A ``QuantizedMatrix`` keeps a GGUF tensor's blocks exactly as the file stores
them (Q4_1: 32 weights as fp16 scale ``d``, fp16 min ``m`` and 4-bit ``q``,
w = d*q + m; Q8_0: fp16 ``d`` and 8-bit ``q``, w = d*q) and multiplies by them
in the ``_qkernels`` extension (engines/native/kernels/): each block is
dequantized in registers, once per call, and applied to every activation row.
A dequantized weight is exactly representable in fp32 and activations and
sums stay fp32, so the quantized engine computes the same model as the fp32
one, up to the order of additions, while reading ~5.6x fewer bytes per token.

Row count picks the path: up to ``DENSE_FROM_ROWS - 1`` rows (decode steps,
verification passes, batched decode) use the block kernels; from there on
(prefill chunks) the matrix is dequantized into fp32 and the dense kernel does
the matmul, which is exact too and faster when many rows share the weights.

``WeightFormat.Q8ACT`` keeps the same blocks but, on the block-kernel path, first
quantizes the activations to int8 per row and block of 32 (kernels/q8act.h) and
multiplies in integers, as llama.cpp does on CPUs: ~1.5-2.5x faster per call at
1-8 rows, not exact against fp32 (about 1% of an output's scale). Each output row
still depends on its own activation row only, in a fixed order, so a verification
pass and a one-row step give a row the same logits and speculation stays lossless.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

DENSE_FROM_ROWS = 16
"""From this many rows on, dequantize and use the dense kernel. Measured on the SmolLM2 matrices
(docs/benchmarks.md): the block kernels win clearly up to 8 rows and lose from ~16 on, where the
dense GEMM's register blocking amortises the one-off dequantization."""


class WeightFormat(enum.Enum):
    """How the native engine holds its weights."""

    Q = "q"
    """The GGUF's own quantized blocks where the kernels support them (Q4_1, Q8_0), else fp32."""
    FP32 = "fp32"
    """Everything dequantized to fp32 at load: the reference path (and the one for GPUs)."""
    Q8ACT = "q8act"
    """``Q``'s blocks, with int8 activations on the block-kernel path (decode and verification):
    faster, not exact against fp32 (the module docstring)."""

    @property
    def keeps_blocks(self) -> bool:
        """Whether quantized tensors stay GGUF blocks (and the fused operations are used)."""
        return self is not WeightFormat.FP32


class QuantKind(enum.Enum):
    """GGUF block formats the kernels compute from directly."""

    Q4_1 = "q4_1"
    Q8_0 = "q8_0"

    @property
    def block_bytes(self) -> int:
        """Bytes per block of 32 weights in a GGUF file: the fp16 scales, then the values."""
        return 2 * self.scales + self.value_bytes

    @property
    def value_bytes(self) -> int:
        """Bytes of quantized values per block of 32."""
        return 16 if self is QuantKind.Q4_1 else 32

    @property
    def scales(self) -> int:
        """fp16 scales per block: Q4_1 has d and m, Q8_0 only d."""
        return 2 if self is QuantKind.Q4_1 else 1


_scratch = threading.local()


class KernelsUnavailable(RuntimeError):
    """The compiled kernels are missing: the package was installed without a C++ compiler."""


class KernelModule(Protocol):
    """What this module uses of ``_qkernels`` (its stub, ``_qkernels.pyi``, documents each call)."""

    Q4_1: int
    Q8_0: int

    def matmul(
        self, kind: int, x: int, rows: int, k: int, qs: int, scales: int, n: int, out: int, /
    ) -> None: ...
    def matmul_q8(
        self, kind: int, x: int, rows: int, k: int, qs: int, scales: int, n: int, out: int, /
    ) -> None: ...
    def dequantize(self, kind: int, qs: int, scales: int, n: int, k: int, out: int, /) -> None: ...
    def gather(self, kind: int, qs: int, scales: int, k: int, ids: int, count: int, out: int, /) -> None: ...
    def rmsnorm(self, x: int, weight: int, out: int, rows: int, dim: int, eps: float, /) -> None: ...
    def silu_mul(self, gate_up: int, out: int, rows: int, width: int, /) -> None: ...
    def rope(
        self,
        x: int,
        batch: int,
        heads: int,
        tokens: int,
        head_dim: int,
        positions: int,
        cos: int,
        sin: int,
        /,
    ) -> None: ...
    def attention(
        self,
        q: int,
        q_batch_stride: int,
        k: int,
        v: int,
        slot_stride: int,
        head_stride: int,
        slots: int,
        starts: int,
        batch: int,
        tokens: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        out: int,
        /,
    ) -> None: ...
    def set_threads(self, threads: int, /) -> None: ...
    def threads(self) -> int: ...
    def isa(self) -> str: ...
    def q8_isa(self) -> str: ...
    def set_isa(self, name: str, /) -> None: ...


@functools.cache
def kernels() -> KernelModule:
    """The ``_qkernels`` extension; raises ``KernelsUnavailable`` when it was not built."""
    try:
        from engines.native import _qkernels
    except ImportError as error:
        raise KernelsUnavailable(
            "the native engine's quantized kernels (engines.native._qkernels) are not built: "
            "install a C++ compiler (g++ or clang++) and reinstall (make venv), "
            "or serve with --weights fp32"
        ) from error
    return _qkernels


def set_kernel_threads(threads: int) -> None:
    """Threads the block kernels split each call across (the calling thread included)."""
    kernels().set_threads(threads)


def kernel_isa() -> str:
    """The instruction set the block kernels run on this CPU: ``avx512``, ``avx2`` or ``generic``."""
    return kernels().isa()


def kernel_q8_isa() -> str:
    """The int8-activation kernels in use: ``avx512vnni``, ``avx2`` or ``generic``."""
    return kernels().q8_isa()


class Matrix(Protocol):
    """A weight ``[out_features, in_features]`` that multiplies activations."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        ...

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T`` for fp32 ``x`` [..., in_features]."""
        ...

    def dense(self) -> torch.Tensor:
        """The weights as an fp32 tensor (exact)."""
        ...


@dataclass(frozen=True, slots=True)
class DenseMatrix:
    """An fp32 weight, multiplied by ``F.linear``."""

    weight: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.weight.shape
        return int(rows), int(cols)

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)

    def dense(self) -> torch.Tensor:
        return self.weight


@dataclass(frozen=True, slots=True)
class QuantizedMatrix:
    """A weight in GGUF's blocks, repacked (same values) as the kernels read them.

    ``qs`` is uint8 ``[rows, cols / 32 * kind.value_bytes]``: each block's values as GGUF
    stores them. ``scales`` is float16 ``[rows, cols / 32 * kind.scales]``: Q4_1's d and m, or
    Q8_0's d, of each block. Build from a GGUF tensor with ``from_blocks``.

    ``int8_activations`` picks the int8 kernels for the block-kernel path (``WeightFormat.Q8ACT``).
    """

    kind: QuantKind
    qs: torch.Tensor
    scales: torch.Tensor
    rows: int
    cols: int
    int8_activations: bool = False
    dense_from_rows: int = DENSE_FROM_ROWS
    """Calls of this many rows or more dequantize and use the dense kernel (exact). An int8 matrix
    of the engine sets it above every decode and verification pass, so that each of those passes
    computes a row the same way (``WeightFormat.Q8ACT``)."""

    def __post_init__(self) -> None:
        if self.cols % 32 != 0 or self.cols == 0:
            raise ValueError(f"{self.kind.value} rows hold whole blocks of 32; got {self.cols} columns")
        blocks = self.cols // 32
        for tensor, dtype, width in (
            (self.qs, torch.uint8, blocks * self.kind.value_bytes),
            (self.scales, torch.float16, blocks * self.kind.scales),
        ):
            if tensor.dtype != dtype or tuple(tensor.shape) != (self.rows, width):
                raise ValueError(
                    f"{self.kind.value}: expected {dtype} {(self.rows, width)}; "
                    f"got {tensor.dtype} {tuple(tensor.shape)}"
                )
            if not tensor.is_contiguous():
                raise ValueError("quantized tensors must be contiguous")

    @classmethod
    def from_blocks(
        cls, kind: QuantKind, blocks: np.ndarray[Any, np.dtype[np.uint8]], cols: int
    ) -> QuantizedMatrix:
        """From GGUF's own layout: uint8 ``[rows, cols / 32 * kind.block_bytes]``."""
        rows = blocks.shape[0]
        per_row = blocks.reshape(rows, cols // 32, kind.block_bytes)
        scale_bytes = 2 * kind.scales
        scales = np.ascontiguousarray(per_row[:, :, :scale_bytes]).view(np.float16).reshape(rows, -1)
        qs = np.ascontiguousarray(per_row[:, :, scale_bytes:]).reshape(rows, -1)
        return cls(kind, torch.from_numpy(qs), torch.from_numpy(scales), rows, cols)

    def with_int8_activations(self, dense_from_rows: int = DENSE_FROM_ROWS) -> QuantizedMatrix:
        """The same blocks (shared, not copied), multiplied with int8 activations below
        ``dense_from_rows`` rows."""
        return dataclasses.replace(self, int8_activations=True, dense_from_rows=max(dense_from_rows, 1))

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def _kind_code(self) -> int:
        return kernels().Q4_1 if self.kind is QuantKind.Q4_1 else kernels().Q8_0

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.shape[-1] != self.cols:
            raise ValueError(f"expected fp32 [..., {self.cols}]; got {x.dtype} {tuple(x.shape)}")
        flat = x.reshape(-1, self.cols).contiguous()
        n_rows = flat.shape[0]
        # Dequantizing costs one pass over the whole matrix: for the 49152-row output head it
        # pays off only from ~100 rows (bench/kernels.py), for a layer matrix from DENSE_FROM_ROWS.
        if n_rows >= max(self.dense_from_rows, self.rows // 512):
            out = F.linear(flat, self._dense_scratch())
        else:
            out = torch.empty(n_rows, self.rows, dtype=torch.float32)
            if n_rows:
                module = kernels()
                multiply = module.matmul_q8 if self.int8_activations else module.matmul
                multiply(
                    self._kind_code,
                    flat.data_ptr(),
                    n_rows,
                    self.cols,
                    self.qs.data_ptr(),
                    self.scales.data_ptr(),
                    self.rows,
                    out.data_ptr(),
                )
        return out.reshape(*x.shape[:-1], self.rows)

    def dense(self) -> torch.Tensor:
        return self._dequantize_into(torch.empty(self.rows, self.cols, dtype=torch.float32))

    def _dense_scratch(self) -> torch.Tensor:
        """The fp32 weights in this thread's scratch buffer, valid until its next use.

        A fresh tensor per prefill matmul would fault in new pages every time (540 MB per
        forward pass of SmolLM2): the scratch is reused, growing to the largest matrix.
        """
        size = self.rows * self.cols
        scratch: torch.Tensor | None = getattr(_scratch, "buffer", None)
        if scratch is None or scratch.numel() < size:
            scratch = torch.empty(size, dtype=torch.float32)
            _scratch.buffer = scratch
        return self._dequantize_into(scratch[:size].view(self.rows, self.cols))

    def _dequantize_into(self, out: torch.Tensor) -> torch.Tensor:
        kernels().dequantize(
            self._kind_code, self.qs.data_ptr(), self.scales.data_ptr(), self.rows, self.cols, out.data_ptr()
        )
        return out

    def take_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """fp32 rows ``ids`` (an embedding lookup): ``[*ids.shape, cols]``."""
        flat = ids.reshape(-1).to(torch.int64).contiguous()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= self.rows):
            raise IndexError(f"row ids must be in [0, {self.rows})")
        out = torch.empty(flat.numel(), self.cols, dtype=torch.float32)
        kernels().gather(
            self._kind_code,
            self.qs.data_ptr(),
            self.scales.data_ptr(),
            self.cols,
            flat.data_ptr(),
            flat.numel(),
            out.data_ptr(),
        )
        return out.reshape(*ids.shape, self.cols)


Weight = torch.Tensor | QuantizedMatrix
"""A tensor of a loaded model: fp32 (norms, or any type the kernels lack) or GGUF blocks."""


def as_matrix(weight: Weight, weight_format: WeightFormat, *, decode_rows: int = 0) -> Matrix:
    """``weight`` as the format asks: quantized blocks stay blocks for ``Q`` and ``Q8ACT``.

    ``decode_rows``: the most rows a decode step or verification pass can have; with ``Q8ACT``
    every call of up to that many rows (and at least ``DENSE_FROM_ROWS - 1``) takes the int8 kernels.
    """
    if isinstance(weight, QuantizedMatrix):
        if weight_format is WeightFormat.Q:
            return weight
        if weight_format is WeightFormat.Q8ACT:
            return weight.with_int8_activations(max(DENSE_FROM_ROWS, decode_rows + 1))
        return DenseMatrix(weight.dense())
    return DenseMatrix(weight)


def stack_rows(parts: Sequence[Matrix]) -> Matrix:
    """One matrix with the rows of ``parts`` one after another (fused q/k/v, fused gate/up).

    Blocks of one kind (and one kind of activations) concatenate as blocks; any mix falls back
    to dense fp32.
    """
    first = parts[0]
    if isinstance(first, QuantizedMatrix) and all(
        isinstance(p, QuantizedMatrix)
        and p.kind is first.kind
        and p.cols == first.cols
        and p.int8_activations == first.int8_activations
        and p.dense_from_rows == first.dense_from_rows
        for p in parts
    ):
        quantized = [p for p in parts if isinstance(p, QuantizedMatrix)]
        return QuantizedMatrix(
            first.kind,
            torch.cat([p.qs for p in quantized]),
            torch.cat([p.scales for p in quantized]),
            sum(p.rows for p in quantized),
            first.cols,
            first.int8_activations,
            first.dense_from_rows,
        )
    return DenseMatrix(torch.cat([p.dense() for p in parts]))


def dense_state_dict(state: dict[str, Weight]) -> dict[str, torch.Tensor]:
    """Every weight as fp32 (exact): for the reference path, training and tests."""
    return {name: w.dense() if isinstance(w, QuantizedMatrix) else w for name, w in state.items()}
