"""``SimEngineConfig``: the timing shape the simulation engine paces itself to.

The defaults follow the record NVIDIA set serving Llama 4 Maverick on
TensorRT-LLM. They reproduce its shape (per-user speed with EAGLE-3 in
latency mode, aggregate speed without speculation in throughput mode), not a
model of any hardware: a load test against them measures the front door, not
the engine.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from engines.delivery import IMMEDIATE, Coalescing

MAX_DRAFT = 64
"""Upper bound on ``max_draft``; NVIDIA's EAGLE-3 configurations draft 3."""


class SimMode(enum.Enum):
    """Which of NVIDIA's two records the simulation imitates."""

    LATENCY = "latency"
    """Few users, each fast: a fixed step interval and EAGLE-3-like multi-token steps
    (defaults: 3 ms steps, about 3.0 tokens each, so about 1,000 tokens/s per user, batch 8)."""
    THROUGHPUT = "throughput"
    """Many users: one token per step and a step time that grows with the batch
    (defaults: 2 ms + 6 µs per request, batch 512; about 72,000 tokens/s in all at 256 users)."""


@dataclass(frozen=True, slots=True)
class SimEngineConfig:
    """How to build a ``SimEngine``. The plain defaults are latency mode's; ``for_mode`` gives each mode's."""

    mode: SimMode = SimMode.LATENCY
    step_interval_s: float = 0.003
    """Latency mode: seconds between steps, whatever the batch."""
    max_draft: int = 3
    """Latency mode: draft tokens proposed per step (throughput mode never drafts)."""
    acceptance: float = 0.81
    """Latency mode: probability that each draft, checked in order, is accepted."""
    base_step_s: float = 0.002
    """Throughput mode: seconds per step with an empty batch ..."""
    per_request_step_s: float = 6e-6
    """... plus this much per active request."""
    max_batch_size: int = 8
    """Requests stepping at once; throughput mode's default (``for_mode``) is 512."""
    max_waiting: int = 1024
    """Requests queued beyond the batch before ``generate`` raises ``EngineOverloaded``."""
    context_length: int = 8192
    """Prompt plus output tokens per request; a request reaching it ends with LENGTH."""
    seed: int = 0
    """Seeds every request's ``step_sizes`` (together with its id)."""
    gguf_path: Path | None = None
    """GGUF file whose tokenizer gives the output tokens; None: SmolLM2's (as the native engine)."""
    cache_dir: Path | None = None
    """The native engine's converted-weights cache; None: its default."""
    coalescing: Coalescing = IMMEDIATE
    """When pending tokens are handed to the reader (``engines.delivery.Coalescing``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.mode, SimMode):
            raise ValueError(f"mode must be a SimMode; got {self.mode!r}")
        _require_positive("step_interval_s", self.step_interval_s)
        _require_positive("base_step_s", self.base_step_s)
        if not (math.isfinite(self.per_request_step_s) and self.per_request_step_s >= 0):
            raise ValueError(f"per_request_step_s must be 0 or more; got {self.per_request_step_s}")
        if not 0 <= self.max_draft <= MAX_DRAFT:
            raise ValueError(f"max_draft must be in [0, {MAX_DRAFT}]; got {self.max_draft}")
        if not 0.0 <= self.acceptance <= 1.0:
            raise ValueError(f"acceptance must be in [0, 1]; got {self.acceptance}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1; got {self.max_batch_size}")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more; got {self.max_waiting}")
        if self.context_length < 2:
            raise ValueError(f"context_length must be at least 2; got {self.context_length}")

    @classmethod
    def for_mode(cls, mode: SimMode) -> SimEngineConfig:
        """The defaults of ``mode``; change fields with ``dataclasses.replace``."""
        match mode:
            case SimMode.LATENCY:
                return cls(mode=mode)
            case SimMode.THROUGHPUT:
                return cls(mode=mode, max_draft=0, max_batch_size=512)
            case _:
                assert_never(mode)

    @property
    def draft_length(self) -> int:
        """Drafts per step as the engine uses them: ``max_draft``, or 0 in throughput mode."""
        match self.mode:
            case SimMode.LATENCY:
                return self.max_draft
            case SimMode.THROUGHPUT:
                return 0
            case _:
                assert_never(self.mode)

    def step_time_s(self, active_requests: int) -> float:
        """Seconds from one step to the next with ``active_requests`` in the batch."""
        match self.mode:
            case SimMode.LATENCY:
                return self.step_interval_s
            case SimMode.THROUGHPUT:
                return self.base_step_s + self.per_request_step_s * active_requests
            case _:
                assert_never(self.mode)


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds; got {value}")
