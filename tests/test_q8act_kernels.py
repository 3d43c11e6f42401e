"""The int8-activation kernels (weight mode ``q8act``): their integer math, their error, their invariants.

``QuantizedMatrix.with_int8_activations()`` multiplies by GGUF blocks after quantizing each
activation row per block of 32 to int8 (scale ``d = amax / 127``, round half to even). That
is not exact, so these tests check it three ways:

- bit for bit (up to fp32 summation order) against an independent float64 numpy model of the
  specified integer math, on every int8 instruction set the CPU has: a wrong rounding, scale,
  nibble order or min term shows up as an error far above fp32 noise;
- against the exact fp32 matmul, with a measured and documented error bound (and an error
  that must not be zero, or the int8 path did not run);
- for the invariants the engine relies on: a row's result does not depend on the other rows
  of the call or the thread count (speculative decoding stays lossless), edge values (zero
  blocks, saturation, large values, outliers) stay finite and right, prefill row counts take
  the exact dense path, and a matrix without the flag is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from engines.native.matrices import (
    DENSE_FROM_ROWS,
    QuantizedMatrix,
    QuantKind,
    kernels,
    stack_rows,
)
from tests import gguf_blocks
from tests.gguf_blocks import Blocks, dequantized, random_blocks

Floats = npt.NDArray[np.float64]


EXACT_MATH = 1e-5
"""Kernel against the float64 model of its own integer math: only fp32 rounding of the scales
and the sums over blocks separate them (measured ~1e-7)."""

INT8_VS_FP32 = 2.5e-2
"""Int8 activations against the exact fp32 matmul, as max abs error / max |expected|, for random
blocks and Gaussian activations. Rounding to a step of amax/127 leaves an error up to half a step
per value; the reference measures 3.4e-3..8.8e-3 over the shapes and row counts used here, so
2.5e-2 is ~3x the worst."""

INT8_VS_FP32_REAL = 5e-2
"""The same for SmolLM2's own blocks: 4.5e-3..2.0e-2 measured (worst: ``blk.7.ffn_down`` at 2 rows,
``blk.11.ffn_up`` and ``blk.3.attn_q`` up to 1.4e-2), whose outputs are smaller relative to the
rounding noise than random blocks'; 5e-2 is 2.5x the worst."""

OUTLIER_VS_FP32 = 3e-2
"""Same, with one value per block 1000x the others: those others all round to 0 and are lost, but
the outliers dominate the outputs, so relative to max |expected| the error stays ~8e-3 (measured
on both kinds); the bound is the loosest here, ~4x that."""


def _q8_isas() -> dict[str, str]:
    """The int8 kernel each supported ``set_isa`` name selects, deduplicated: q8 name -> isa name."""
    found: dict[str, str] = {}
    for name in ("generic", "avx2", "avx512"):
        try:
            kernels().set_isa(name)
        except ValueError:
            continue
        found.setdefault(kernels().q8_isa(), name)
    kernels().set_isa("best")
    return found


Q8_ISAS = _q8_isas()


@pytest.fixture(params=list(Q8_ISAS), ids=list(Q8_ISAS))
def q8_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    kernels().set_isa(Q8_ISAS[name])
    assert kernels().q8_isa() == name
    yield name
    kernels().set_isa("best")


def decode(kind: QuantKind, blocks: Blocks, k: int) -> tuple[Floats, Floats, Floats]:
    """Integer values ``q`` [n, k/32, 32] and float64 scale ``dw`` and min ``mw`` [n, k/32] per block."""
    n = blocks.shape[0]
    per_block = blocks.reshape(n, k // 32, kind.block_bytes)
    scales = np.ascontiguousarray(per_block[:, :, : 2 * kind.scales]).view(np.float16).astype(np.float64)
    values = per_block[:, :, 2 * kind.scales :]
    if kind is QuantKind.Q4_1:  # byte j: element j in the low nibble, element j + 16 in the high one
        q = np.concatenate([values & 0x0F, values >> 4], axis=2).astype(np.float64)
        return q, scales[:, :, 0], scales[:, :, 1]
    return values.view(np.int8).astype(np.float64), scales[:, :, 0], np.zeros_like(scales[:, :, 0])


def q8_reference(kind: QuantKind, blocks: Blocks, k: int, x: torch.Tensor) -> torch.Tensor:
    """The specified int8-activation product in float64: ``[rows, n]``."""
    q, dw, mw = decode(kind, blocks, k)
    xb = x.numpy().astype(np.float32).reshape(x.shape[0], k // 32, 32)
    amax = np.abs(xb).max(axis=2)
    d = amax / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    a = np.rint(xb * inv[:, :, None])  # fp32 product, round half to even
    assert d.dtype == inv.dtype == a.dtype == np.float32
    assert np.abs(a).max(initial=0) <= 127
    # [blocks, rows, 32] @ [blocks, 32, n]: the integer dot products, exact in float64.
    dots = np.matmul(a.astype(np.float64).transpose(1, 0, 2), q.transpose(1, 2, 0))
    out = np.einsum("brn,nb,rb->rn", dots, dw, d.astype(np.float64))
    out += xb.astype(np.float64).sum(axis=2) @ mw.T
    return torch.from_numpy(out)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """max |got - expected| / max |expected|, in float64."""
    assert got.shape == expected.shape
    assert bool(torch.isfinite(got).all()), "non-finite output"
    scale = expected.abs().max().item() + 1e-30
    return float((got.double() - expected.double()).abs().max().item() / scale)


def activations(rows: int, k: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(rows, k, generator=torch.Generator().manual_seed(seed)) * scale


def int8(kind: QuantKind, blocks: Blocks, k: int) -> QuantizedMatrix:
    return QuantizedMatrix.from_blocks(kind, blocks, k).with_int8_activations()


def test_decode_matches_gguf() -> None:
    """The reference's own decoding (nibble order, scales, mins) is gguf-py's, exactly."""
    for kind in QuantKind:
        blocks = random_blocks(kind, 9, 96, seed=3)
        q, dw, mw = decode(kind, blocks, 96)
        weights = (q * dw[:, :, None] + mw[:, :, None]).reshape(9, 96)
        assert torch.equal(torch.from_numpy(weights).float(), dequantized(kind, blocks, 96)), kind


def test_isa_names_and_selection() -> None:
    """``set_isa`` picks the int8 kernel too; ``best`` is the best one the CPU has."""
    assert set(Q8_ISAS) <= {"avx512vnni", "avx2", "generic"}
    assert "generic" in Q8_ISAS
    assert Q8_ISAS["generic"] == "generic"
    assert Q8_ISAS.get("avx2", "avx2") == "avx2"  # ("avx512" without VNNI also gives "avx2")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = cpuinfo.read_text()
        if " avx512_vnni" in flags and " avx512bw" in flags:
            assert Q8_ISAS.get("avx512vnni") == "avx512"
    try:
        kernels().set_isa("best")
        best = kernels().q8_isa()
    finally:
        kernels().set_isa("best")
    assert best == next(name for name in ("avx512vnni", "avx2", "generic") if name in Q8_ISAS)


_reference_cache: dict[tuple[QuantKind, int, int], tuple[Blocks, torch.Tensor, torch.Tensor]] = {}


def _case(kind: QuantKind, n: int, k: int) -> tuple[Blocks, torch.Tensor, torch.Tensor]:
    """Blocks, 15 activation rows and their reference, computed once per shape for all ISAs/threads."""
    key = (kind, n, k)
    if key not in _reference_cache:
        blocks = random_blocks(kind, n, k, seed=n * 7 + k)
        x = activations(DENSE_FROM_ROWS - 1, k, seed=n + k)
        _reference_cache[key] = (blocks, x, q8_reference(kind, blocks, k, x))
    return _reference_cache[key]


@pytest.mark.parametrize("kind", list(QuantKind))
@pytest.mark.parametrize(("n", "k"), [(1, 32), (5, 96), (37, 576), (130, 1536), (130, 32)])
def test_matches_the_integer_math(q8_isa: str, kernel_threads: int, kind: QuantKind, n: int, k: int) -> None:
    """Every int8 ISA, thread count, ragged weight-row count, odd block count and 1..15 rows."""
    blocks, x, expected = _case(kind, n, k)
    matrix = int8(kind, blocks, k)
    for rows in range(1, DENSE_FROM_ROWS):
        error = relative_error(matrix.matmul(x[:rows]), expected[:rows])
        assert error < EXACT_MATH, f"{q8_isa} rows={rows}: error {error:.2e}"


def test_raw_kernel_call(q8_isa: str) -> None:
    """``matmul_q8`` itself: same arguments as ``matmul``, refuses a partial block like it."""
    kind, n, k = QuantKind.Q4_1, 37, 576
    blocks, x, expected = _case(kind, n, k)
    matrix = QuantizedMatrix.from_blocks(kind, blocks, k)
    out = torch.full((7, n), float("nan"))
    kernels().matmul_q8(
        kernels().Q4_1, x.data_ptr(), 7, k, matrix.qs.data_ptr(), matrix.scales.data_ptr(), n, out.data_ptr()
    )
    assert relative_error(out, expected[:7]) < EXACT_MATH
    with pytest.raises(ValueError, match="multiple of 32"):
        kernels().matmul_q8(kernels().Q8_0, 0, 1, 48, 0, 0, 1, 0)


def test_activations_on_the_int8_grid_are_exact(q8_isa: str) -> None:
    """Blocks whose values are integers up to 127 with 127 present quantize losslessly (d = 1)."""
    for kind in QuantKind:
        blocks = random_blocks(kind, 40, 192, seed=5)
        x = torch.randint(-127, 128, (6, 192), generator=torch.Generator().manual_seed(5)).float()
        x[:, ::32] = 127.0
        exact = x.double() @ dequantized(kind, blocks, 192).double().T
        assert relative_error(q8_reference(kind, blocks, 192, x), exact) < 1e-12
        assert relative_error(int8(kind, blocks, 192).matmul(x), exact) < EXACT_MATH, kind


def test_ties_round_half_to_even(q8_isa: str) -> None:
    """With d = 1 the values k + 1/2 are exact ties: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2 (not away from 0)."""
    for kind in QuantKind:
        blocks = random_blocks(kind, 37, 128, seed=6)
        x = torch.randint(-63, 63, (4, 128), generator=torch.Generator().manual_seed(6)).float() + 0.5
        x[:, ::32] = 127.0  # every block's amax: d = 1, inv = 1
        expected = q8_reference(kind, blocks, 128, x)
        assert relative_error(int8(kind, blocks, 128).matmul(x), expected) < EXACT_MATH, kind


def check_close_to_fp32(kind: QuantKind, blocks: Blocks, k: int, name: str, bound: float) -> list[float]:
    """Relative errors against the exact fp32 product at the engine's row counts; each within the bound."""
    matrix = int8(kind, blocks, k)
    dense = dequantized(kind, blocks, k).double()
    errors = []
    for rows in (1, 2, 5, 8, 13, 15):
        x = activations(rows, k, seed=rows)
        error = relative_error(matrix.matmul(x), x.double() @ dense.T)
        assert error < bound, f"{name} rows={rows}: error {error:.2e}"
        errors.append(error)
    return errors


@pytest.mark.parametrize("kind", list(QuantKind))
def test_close_to_fp32_on_random_blocks(q8_isa: str, kind: QuantKind) -> None:
    for n, k in ((130, 576), (64, 1536)):
        blocks = random_blocks(kind, n, k, seed=k)
        errors = check_close_to_fp32(kind, blocks, k, f"{kind.value} {n}x{k}", INT8_VS_FP32)
        # int8 is not exact: a zero error would mean the fp32 kernel ran instead.
        assert min(errors) > 1e-4, errors


@pytest.fixture(scope="module")
def real_tensors() -> dict[str, tuple[QuantKind, Blocks, int]]:
    return gguf_blocks.real_tensors(embedding_rows=3000)  # keep the float64 reference small


def test_close_to_fp32_on_real_blocks(
    q8_isa: str, real_tensors: dict[str, tuple[QuantKind, Blocks, int]]
) -> None:
    """SmolLM2's Q4_1 layers and (the first 3000 rows of) its Q8_0 embedding/output head."""
    for name, (kind, blocks, k) in real_tensors.items():
        errors = check_close_to_fp32(kind, blocks, k, name, INT8_VS_FP32_REAL)
        assert min(errors) > 0, name
        x = activations(4, k, seed=11)
        got = int8(kind, blocks, k).matmul(x)
        assert relative_error(got, q8_reference(kind, blocks, k, x)) < EXACT_MATH, name


@pytest.mark.parametrize("kind", list(QuantKind))
def test_rows_are_independent_bitwise(q8_isa: str, kind: QuantKind) -> None:
    """A row's result is the same bits alone, at any position of a 2..15-row call, with 1..3 threads."""
    blocks = random_blocks(kind, 130, 1536, seed=21)
    matrix = int8(kind, blocks, 1536)
    x = activations(DENSE_FROM_ROWS - 1, 1536, seed=21)
    before = kernels().threads()
    try:
        kernels().set_threads(1)
        alone = torch.cat([matrix.matmul(x[i : i + 1]) for i in range(x.shape[0])])
        for count in (1, 2, 3):
            kernels().set_threads(count)
            for rows in range(2, DENSE_FROM_ROWS):
                assert torch.equal(matrix.matmul(x[:rows]), alone[:rows]), (count, rows)
                flipped = matrix.matmul(x[:rows].flip(0).contiguous())
                assert torch.equal(flipped, alone[:rows].flip(0)), (count, rows)
            assert torch.equal(torch.cat([matrix.matmul(x[i : i + 1]) for i in range(4)]), alone[:4])
    finally:
        kernels().set_threads(before)


@pytest.mark.parametrize("kind", list(QuantKind))
def test_zero_blocks_give_zero_and_no_nan(q8_isa: str, kind: QuantKind) -> None:
    """d = 0: the block adds exactly nothing (Q4_1's min term times a zero sum), never 0 * inf."""
    blocks = random_blocks(kind, 37, 96, seed=4)
    matrix = int8(kind, blocks, 96)
    assert torch.equal(matrix.matmul(torch.zeros(3, 96)), torch.zeros(3, 37))
    x = activations(3, 96, seed=4)
    x[:, 32:64] = 0.0
    x[1, :] = 0.0
    got = matrix.matmul(x)
    assert torch.equal(got[1], torch.zeros(37))
    assert relative_error(got, q8_reference(kind, blocks, 96, x)) < EXACT_MATH
    # The zero block contributes nothing, so its weights do not matter.
    changed = blocks.copy()
    per_block = changed.reshape(37, 3, kind.block_bytes)
    per_block[:, 1, 2 * kind.scales :] = 255 - per_block[:, 1, 2 * kind.scales :]
    assert torch.equal(int8(kind, changed, 96).matmul(x), got)


@pytest.mark.parametrize("kind", list(QuantKind))
def test_saturated_blocks_do_not_overflow(q8_isa: str, kind: QuantKind) -> None:
    """Every weight and activation at its extreme (q = 15 or -128/127, a = +-127): integer sums
    of 32 * 128 * 127 must not wrap in any lane width the kernels use."""
    n, k = 8, 256
    blocks = random_blocks(kind, n, k, seed=8).reshape(n, k // 32, kind.block_bytes)
    # Q4_1: all 15, all 0, low nibbles 0 and high 15, the reverse. Q8_0: -128, 127, -128, -127.
    extremes = [0xFF, 0x00, 0xF0, 0x0F] if kind is QuantKind.Q4_1 else [0x80, 0x7F, 0x80, 0x81]
    for row in range(n):
        blocks[row, :, 2 * kind.scales :] = extremes[row % 4]
    flat = np.ascontiguousarray(blocks.reshape(n, -1))
    x = torch.full((4, k), 3.5)
    x[1] = -3.5
    x[2, ::2] = -3.5
    x[3] = 1e4 * torch.sign(activations(1, k, seed=9)[0])
    got = int8(kind, flat, k).matmul(x)
    assert relative_error(got, q8_reference(kind, flat, k, x)) < EXACT_MATH
    assert relative_error(got, x.double() @ dequantized(kind, flat, k).double().T) < 1e-5  # on the grid


@pytest.mark.parametrize("kind", list(QuantKind))
def test_large_activations_stay_finite_and_accurate(q8_isa: str, kind: QuantKind) -> None:
    blocks = random_blocks(kind, 130, 576, seed=12)
    x = activations(5, 576, seed=12, scale=1e4)
    got = int8(kind, blocks, 576).matmul(x)
    assert relative_error(got, q8_reference(kind, blocks, 576, x)) < EXACT_MATH
    assert relative_error(got, x.double() @ dequantized(kind, blocks, 576).double().T) < INT8_VS_FP32


@pytest.mark.parametrize("kind", list(QuantKind))
def test_one_outlier_per_block(q8_isa: str, kind: QuantKind) -> None:
    blocks = random_blocks(kind, 130, 576, seed=13)
    x = activations(5, 576, seed=13)
    x[:, 7::32] = 1000.0
    x[2, 7::64] = -1000.0
    got = int8(kind, blocks, 576).matmul(x)
    assert relative_error(got, q8_reference(kind, blocks, 576, x)) < EXACT_MATH
    error = relative_error(got, x.double() @ dequantized(kind, blocks, 576).double().T)
    assert error < OUTLIER_VS_FP32, f"error {error:.2e}"


def test_prefill_row_counts_take_the_exact_dense_path() -> None:
    """From ``max(DENSE_FROM_ROWS, rows // 512)`` rows on the flag changes nothing; below, it does."""
    for kind, n in ((QuantKind.Q4_1, 130), (QuantKind.Q8_0, 10240)):  # thresholds 16 and 20
        blocks = random_blocks(kind, n, 64, seed=n)
        plain = QuantizedMatrix.from_blocks(kind, blocks, 64)
        matrix = plain.with_int8_activations()
        threshold = max(DENSE_FROM_ROWS, n // 512)
        x = activations(threshold + 4, 64, seed=n)
        below = x[: threshold - 1]
        assert not torch.equal(matrix.matmul(below), plain.matmul(below)), kind
        assert relative_error(matrix.matmul(below), q8_reference(kind, blocks, 64, below)) < EXACT_MATH
        for rows in (threshold, threshold + 1, threshold + 4):
            assert torch.equal(matrix.matmul(x[:rows]), plain.matmul(x[:rows])), (kind, rows)
        x3 = x[:threshold].reshape(2, threshold // 2, 64)  # leading dims flatten into rows
        assert torch.equal(matrix.matmul(x3), plain.matmul(x3))


def test_the_flag_shares_tensors_and_stacks() -> None:
    blocks = random_blocks(QuantKind.Q4_1, 5, 64, seed=1)
    plain = QuantizedMatrix.from_blocks(QuantKind.Q4_1, blocks, 64)
    assert plain.int8_activations is False
    flagged = plain.with_int8_activations()
    assert flagged.int8_activations is True
    assert plain.int8_activations is False
    assert flagged.qs is plain.qs and flagged.scales is plain.scales
    assert (flagged.kind, flagged.rows, flagged.cols) == (plain.kind, plain.rows, plain.cols)

    other_blocks = random_blocks(QuantKind.Q4_1, 3, 64, seed=2)
    other = QuantizedMatrix.from_blocks(QuantKind.Q4_1, other_blocks, 64)
    stacked = stack_rows([flagged, other.with_int8_activations()])
    assert isinstance(stacked, QuantizedMatrix)
    assert stacked.int8_activations is True
    x = activations(3, 64, seed=3)
    expected = q8_reference(QuantKind.Q4_1, np.concatenate([blocks, other_blocks]), 64, x)
    assert relative_error(stacked.matmul(x), expected) < EXACT_MATH
    mixed = stack_rows([flagged, other])  # a mix of activation kinds falls back to exact fp32
    assert not isinstance(mixed, QuantizedMatrix)
    assert torch.equal(mixed.dense(), torch.cat([plain.dense(), other.dense()]))
    unflagged = stack_rows([plain, other])
    assert isinstance(unflagged, QuantizedMatrix)
    assert unflagged.int8_activations is False


@pytest.mark.parametrize("kind", list(QuantKind))
def test_plain_matrices_stay_fp32_exact(kind: QuantKind) -> None:
    blocks = random_blocks(kind, 130, 576, seed=30)
    plain = QuantizedMatrix.from_blocks(kind, blocks, 576)
    dense = dequantized(kind, blocks, 576).double()
    for rows in range(1, DENSE_FROM_ROWS + 2):
        x = activations(rows, 576, seed=rows)
        error = relative_error(plain.matmul(x), x.double() @ dense.T)
        assert error < 2e-6, f"rows={rows}: error {error:.2e}"


def test_calls_from_two_threads_at_once_are_each_correct() -> None:
    """Two Python threads, two int8 matrices, at the same moment: each gets its own rows' bits."""
    cases = []
    for kind, n, k in ((QuantKind.Q4_1, 300, 576), (QuantKind.Q8_0, 200, 1536)):
        blocks = random_blocks(kind, n, k, seed=n)
        matrix = int8(kind, blocks, k)
        x = activations(8, k, seed=k)
        expected = [matrix.matmul(x[:rows]) for rows in range(1, 9)]
        assert relative_error(expected[-1], q8_reference(kind, blocks, k, x)) < EXACT_MATH
        cases.append((matrix, x, expected))
    before = kernels().threads()
    kernels().set_threads(2)
    errors: list[str] = []

    def hammer(case: int) -> None:
        matrix, x, expected = cases[case]
        for i in range(150):
            rows = 1 + (case + i) % 8
            if not torch.equal(matrix.matmul(x[:rows]), expected[rows - 1]):
                errors.append(f"matrix {case}, call {i}, rows {rows}")

    try:
        workers = [threading.Thread(target=hammer, args=(case % 2,)) for case in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        kernels().set_threads(before)
    assert not errors, errors[:3]
