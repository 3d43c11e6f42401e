"""The quantized kernels against a dequantized fp32 matmul: random and real blocks, every instruction set.

The reference is computed in float64 from weights dequantized by gguf-py (the
GGUF format's own Python implementation), so it checks the block layout, the
repacking and the arithmetic at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
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
from tests.gguf_blocks import dequantized, random_blocks


def _supported_isas() -> list[str]:
    found = []
    for name in ("generic", "avx2", "avx512"):
        try:
            kernels().set_isa(name)
        except ValueError:
            continue
        found.append(name)
    kernels().set_isa("best")
    return found


ISAS = _supported_isas()


@pytest.fixture(params=ISAS)
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    kernels().set_isa(name)
    yield name
    kernels().set_isa("best")


def check_matmul(matrix: QuantizedMatrix, dense: torch.Tensor, rows: int, seed: int) -> None:
    x = torch.randn(rows, matrix.cols, generator=torch.Generator().manual_seed(seed))
    got = matrix.matmul(x)
    expected = x.double() @ dense.double().T
    scale = expected.abs().max().item() + 1e-12
    error = (got.double() - expected).abs().max().item() / scale
    assert got.shape == (rows, matrix.rows)
    assert error < 2e-6, f"rows={rows}: max error {error:.2e} of the largest output"


@pytest.mark.parametrize("kind", list(QuantKind))
@pytest.mark.parametrize(("n", "k"), [(1, 32), (7, 64), (33, 96), (100, 576), (17, 1536)])
def test_dequantize_matches_gguf_exactly(isa: str, kind: QuantKind, n: int, k: int) -> None:
    blocks = random_blocks(kind, n, k, seed=n * k)
    matrix = QuantizedMatrix.from_blocks(kind, blocks, k)
    assert torch.equal(matrix.dense(), dequantized(kind, blocks, k))


@pytest.mark.parametrize("kind", list(QuantKind))
@pytest.mark.parametrize(("n", "k"), [(1, 32), (5, 64), (37, 96), (130, 576), (19, 1536)])
def test_matmul_random_blocks_every_row_count(
    isa: str, kernel_threads: int, kind: QuantKind, n: int, k: int
) -> None:
    """Ragged weight-row counts (not multiples of the kernels' tiles) and 1..16 activation rows."""
    blocks = random_blocks(kind, n, k, seed=n + k)
    matrix = QuantizedMatrix.from_blocks(kind, blocks, k)
    dense = dequantized(kind, blocks, k)
    for rows in range(1, DENSE_FROM_ROWS + 2):
        check_matmul(matrix, dense, rows, seed=rows)


@pytest.fixture(scope="module")
def real_tensors() -> dict[str, tuple[QuantKind, np.ndarray, int]]:
    return gguf_blocks.real_tensors()


def test_real_model_blocks(isa: str, real_tensors: dict[str, tuple[QuantKind, np.ndarray, int]]) -> None:
    """SmolLM2's own Q4_1 layers and Q8_0 embedding/output head, at the row counts the engine uses."""
    for name, (kind, blocks, cols) in real_tensors.items():
        if name == "token_embd.weight":
            blocks = blocks[:3000]  # keep the float64 reference small
        matrix = QuantizedMatrix.from_blocks(kind, blocks, cols)
        dense = dequantized(kind, blocks, cols)
        assert torch.equal(matrix.dense(), dense), name
        for rows in (1, 2, 5, 8, 13, 16):
            check_matmul(matrix, dense, rows, seed=rows)


def test_take_rows_is_an_exact_embedding_lookup(
    real_tensors: dict[str, tuple[QuantKind, np.ndarray, int]],
) -> None:
    kind, blocks, cols = real_tensors["token_embd.weight"]
    matrix = QuantizedMatrix.from_blocks(kind, blocks, cols)
    ids = torch.tensor([[0, 49151, 7], [7, 123, 40000]])
    got = matrix.take_rows(ids)
    assert got.shape == (2, 3, cols)
    expected = dequantized(kind, blocks[ids.reshape(-1).numpy()], cols).reshape(2, 3, cols)
    assert torch.equal(got, expected)
    with pytest.raises(IndexError):
        matrix.take_rows(torch.tensor([49152]))
    with pytest.raises(IndexError):
        matrix.take_rows(torch.tensor([-1]))


def test_stacked_rows_keep_their_values() -> None:
    parts = [
        QuantizedMatrix.from_blocks(QuantKind.Q4_1, random_blocks(QuantKind.Q4_1, n, 64, seed=n), 64)
        for n in (3, 5)
    ]
    stacked = stack_rows(parts)
    assert isinstance(stacked, QuantizedMatrix)
    assert torch.equal(stacked.dense(), torch.cat([p.dense() for p in parts]))
    mixed = stack_rows(
        [parts[0], QuantizedMatrix.from_blocks(QuantKind.Q8_0, random_blocks(QuantKind.Q8_0, 2, 64, 1), 64)]
    )
    assert not isinstance(mixed, QuantizedMatrix)
    assert mixed.shape == (5, 64)


def test_bad_shapes_are_refused() -> None:
    blocks = random_blocks(QuantKind.Q8_0, 4, 64, seed=0)
    matrix = QuantizedMatrix.from_blocks(QuantKind.Q8_0, blocks, 64)
    with pytest.raises(ValueError, match="expected fp32"):
        matrix.matmul(torch.randn(2, 32))
    with pytest.raises(ValueError, match="expected fp32"):
        matrix.matmul(torch.randn(2, 64, dtype=torch.float64))
    with pytest.raises(ValueError, match="whole blocks"):
        QuantizedMatrix(QuantKind.Q8_0, matrix.qs[:, :16].contiguous(), matrix.scales, 4, 48)
    with pytest.raises(ValueError, match="expected"):
        QuantizedMatrix(QuantKind.Q4_1, matrix.qs, matrix.scales, 4, 64)
    with pytest.raises(ValueError, match="multiple of 32"):
        kernels().matmul(kernels().Q8_0, 0, 1, 48, 0, 0, 1, 0)
    with pytest.raises(ValueError, match="instruction set"):
        kernels().set_isa("sse9")


def test_threads_and_isa_are_reported() -> None:
    assert kernels().isa() in {"avx512", "avx2", "generic"}
    with pytest.raises(ValueError, match="threads"):
        kernels().set_threads(0)


def test_calls_from_two_threads_at_once_are_each_correct() -> None:
    """Two engines in one process (or a test beside a live server) may call at the same moment."""
    blocks = random_blocks(QuantKind.Q4_1, 300, 576, seed=7)
    matrix = QuantizedMatrix.from_blocks(QuantKind.Q4_1, blocks, 576)
    dense = dequantized(QuantKind.Q4_1, blocks, 576)
    before = kernels().threads()
    kernels().set_threads(2)
    errors: list[str] = []

    def hammer(seed: int) -> None:
        for i in range(200):
            try:
                check_matmul(matrix, dense, 1 + (seed + i) % 8, seed=seed * 1000 + i)
            except AssertionError as error:
                errors.append(str(error))

    try:
        workers = [threading.Thread(target=hammer, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        kernels().set_threads(before)
    assert not errors, errors[:3]


def test_the_thread_pool_survives_runs_of_changing_size_concurrent_callers_and_resizes() -> None:
    """Runs of 2 and of 6 chunks back to back from two threads (one uses the helpers, the
    other computes alone) while a third keeps resizing the pool: every product stays exact and
    no call hangs. (A helper back from its last chunk of a small run once compared its stale
    claim with the next, larger run's size, claimed a chunk that belonged to no run, and counted
    it into the next run, whose caller then waited forever; seen once in CI.)"""
    kind = QuantKind.Q4_1
    cases = []
    for rows, seed in ((32, 7), (96, 8)):
        blocks = random_blocks(kind, rows, 64, seed=seed)
        matrix = QuantizedMatrix.from_blocks(kind, blocks, 64)
        x = torch.randn(2, 64, generator=torch.Generator().manual_seed(seed))
        cases.append((matrix, x, x @ dequantized(kind, blocks, 64).T))
    before = kernels().threads()
    stop = threading.Event()
    failures: list[str] = []

    def multiply(rounds: int) -> None:
        for i in range(rounds):
            matrix, x, expected = cases[i % 2]
            if not torch.allclose(matrix.matmul(x), expected, rtol=1e-4, atol=1e-4):
                failures.append("wrong product")
                return

    def resize() -> None:
        while not stop.is_set():
            for count in (2, 3, 2):
                kernels().set_threads(count)
            time.sleep(0.002)

    kernels().set_threads(2)
    solo = threading.Thread(target=multiply, args=(20000,), daemon=True)
    workers = [threading.Thread(target=multiply, args=(3000,), daemon=True) for _ in range(2)]
    resizer = threading.Thread(target=resize, daemon=True)
    try:
        solo.start()
        solo.join(timeout=120)
        assert not solo.is_alive(), "a matmul call hung"
        resizer.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(w.is_alive() for w in workers), "a matmul call hung"
    finally:
        stop.set()
        resizer.join(timeout=30)
        kernels().set_threads(before)
    assert not failures
