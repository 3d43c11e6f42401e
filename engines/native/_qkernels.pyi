"""Types of the compiled kernels (engines/native/kernels/module.cpp); pointers are ``data_ptr()`` ints."""

Q4_1: int
Q8_0: int

def matmul(kind: int, x: int, rows: int, k: int, qs: int, scales: int, n: int, out: int, /) -> None:
    """``out[rows, n] = x[rows, k] @ W[n, k].T`` from the repacked blocks ``qs``/``scales``."""

def matmul_q8(kind: int, x: int, rows: int, k: int, qs: int, scales: int, n: int, out: int, /) -> None:
    """``matmul`` with ``x`` quantized to int8 per row and block of 32 first (kernels/q8act.h)."""

def dequantize(kind: int, qs: int, scales: int, n: int, k: int, out: int, /) -> None:
    """``out[n, k]``: every weight in fp32 (exact)."""

def gather(kind: int, qs: int, scales: int, k: int, ids: int, count: int, out: int, /) -> None:
    """``out[i] = W[ids[i]]`` in fp32 for int64 ``ids``, which the caller has bounds-checked."""

def rmsnorm(x: int, weight: int, out: int, rows: int, dim: int, eps: float, /) -> None:
    """``out[r] = x[r] / rms(x[r]) * weight`` for fp32 rows of ``dim``."""

def silu_mul(gate_up: int, out: int, rows: int, width: int, /) -> None:
    """``out[r] = silu(gate) * up`` where row r of ``gate_up`` is ``[gate | up]``, each ``width`` wide."""

def rope(
    x: int, batch: int, heads: int, tokens: int, head_dim: int, positions: int, cos: int, sin: int, /
) -> None:
    """Rotate-half RoPE in place on ``x`` [B, heads, T, D]; angles from ``cos``/``sin`` [positions, D]."""

def attention(
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
) -> None:
    """Causal grouped-query attention of ``q`` [B, H, T, D] over each row's cache slot into [B, T, H, D]."""

def set_threads(threads: int, /) -> None:
    """Threads each call is split across, the caller's included (1 to 256)."""

def threads() -> int:
    """Threads each call is split across."""

def isa() -> str:
    """The instruction set in use: ``avx512``, ``avx2`` or ``generic``."""

def q8_isa() -> str:
    """The int8-activation kernels in use: ``avx512vnni``, ``avx2`` or ``generic``."""

def set_isa(name: str, /) -> None:
    """Use ``avx512``, ``avx2``, ``generic`` or the ``best`` this CPU supports; ValueError if unsupported.

    The int8 kernels follow: ``avx512vnni`` with ``avx512`` where the CPU has VNNI, else ``avx2``.
    """
