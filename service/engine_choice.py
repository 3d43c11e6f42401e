"""The one place that knows concrete engines: builds the engine the config names.

Each engine's module is imported only when that engine is chosen, so the
service runs where another engine's dependencies (TensorRT-LLM) are absent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, assert_never

import structlog

from engines.contract import Engine
from engines.delivery import Coalescing
from service.config import ServeConfig

if TYPE_CHECKING:
    from engines.native.engine import NativeEngineConfig
    from engines.sim import SimEngineConfig
    from engines.trtllm.settings import TrtLlmSettings
    from engines.trtllm.versions import Release

log = structlog.get_logger(__name__)


class EngineConfigError(Exception):
    """The configuration cannot start the chosen engine; the message says why and what to do."""


def conversion_progress(step_percent: int = 10) -> Callable[[int, int], None]:
    """A progress callback that logs every ``step_percent`` of a weights conversion."""
    reported = -step_percent

    def report(done: int, total: int) -> None:
        nonlocal reported
        percent = done * 100 // max(total, 1)
        if percent >= reported + step_percent or done == total:
            reported = percent
            log.info("weights_converting", percent=percent, tensors_done=done, tensors_total=total)

    return report


def _native_config(config: ServeConfig) -> NativeEngineConfig:
    from engines.native.eagle3.head import DEFAULT_HEAD
    from engines.native.engine import NativeEngineConfig
    from engines.native.matrices import KernelsUnavailable, WeightFormat, kernels

    defaults = NativeEngineConfig()
    native = config.native
    weights = WeightFormat(native.weights)
    if weights.keeps_blocks:
        try:
            kernels()
        except KernelsUnavailable as error:
            raise EngineConfigError(str(error)) from error
    try:
        return NativeEngineConfig(
            gguf_path=config.model_path,
            cache_dir=config.cache_dir,
            max_batch_size=config.max_batch_size or defaults.max_batch_size,
            max_waiting=config.max_waiting or defaults.max_waiting,
            coalescing=_coalescing(config),
            threads=native.threads,
            weights=weights,
            kv_cache_mb=native.kv_cache_mb,
            prefix_cache_mb=native.prefix_cache_mb,
            prefill=native.prefill,
            speculate_max_decoding=native.speculate_max_decoding,
            speculation=native.speculation,
            draft_length=native.draft_length,
            draft_head=config.draft_model_path if config.draft_model_path is not None else DEFAULT_HEAD,
            progress=conversion_progress(),
        )
    except ValueError as error:
        raise EngineConfigError(f"invalid native engine configuration: {error}") from error


def _trtllm_settings(config: ServeConfig, *, serving: bool) -> TrtLlmSettings:
    from engines.trtllm.settings import SettingsError, load_settings

    try:
        return load_settings(
            preset=config.trtllm.preset,
            config_file=config.trtllm.engine_config,
            overrides=config.trtllm.overrides,
            model=None if config.model_path is None else str(config.model_path),
            draft_model=None if config.draft_model_path is None else str(config.draft_model_path),
            release=_trtllm_release(config, serving=serving),
        )
    except SettingsError as error:
        raise EngineConfigError(f"invalid TensorRT-LLM configuration: {error}") from error


def _trtllm_release(config: ServeConfig, *, serving: bool) -> Release:
    """serve: the installed release (``--trtllm-version`` must agree with it); config show: the flag's,
    else the installed one, else the pinned one."""
    from engines.trtllm.versions import (
        PINNED_VERSION,
        UnsupportedTrtLlmVersion,
        installed_version,
        release_for,
        release_named,
    )

    installed = installed_version()
    try:
        version = config.trtllm.version
        asked = release_named(version) if version is not None else None
        found = release_for(installed) if installed is not None else None
    except UnsupportedTrtLlmVersion as error:
        raise EngineConfigError(str(error)) from error
    if serving and asked is not None and found is not None and asked.line != found.line:
        raise EngineConfigError(
            f"--trtllm-version {config.trtllm.version} does not match the installed {found.name} "
            f"({found.line} line): drop the flag or install that release"
        )
    if serving:
        return found or asked or release_named(PINNED_VERSION)
    return asked or found or release_named(PINNED_VERSION)


def _coalescing(config: ServeConfig) -> Coalescing:
    try:
        return Coalescing(min_tokens=config.coalesce_tokens, max_delay_s=config.coalesce_ms / 1000.0)
    except ValueError as error:
        raise EngineConfigError(str(error)) from error


def _sim_config(config: ServeConfig) -> SimEngineConfig:
    from engines.sim import SimEngineConfig, SimMode

    sim = SimEngineConfig.for_mode(SimMode(config.sim.mode))
    try:
        sim = dataclasses.replace(
            sim,
            seed=config.sim.seed,
            gguf_path=config.model_path,
            cache_dir=config.cache_dir,
            coalescing=_coalescing(config),
        )
        # Unset limits keep the mode's own defaults (512 streams in throughput mode).
        if config.max_batch_size is not None:
            sim = dataclasses.replace(sim, max_batch_size=config.max_batch_size)
        if config.max_waiting is not None:
            sim = dataclasses.replace(sim, max_waiting=config.max_waiting)
        if config.sim.step_ms is not None:
            sim = dataclasses.replace(sim, step_interval_s=config.sim.step_ms / 1000.0)
    except ValueError as error:
        raise EngineConfigError(f"invalid sim engine configuration: {error}") from error
    return sim


def build_engine(config: ServeConfig) -> Engine:
    """An unstarted engine for ``config``; raises ``EngineConfigError`` before anything loads."""
    match config.engine:
        case "native":
            from engines.native.engine import NativeEngine

            return NativeEngine(_native_config(config))
        case "trtllm":
            from engines.trtllm.availability import TrtLlmUnavailable, check_installed
            from engines.trtllm.engine import TrtLlmEngine

            try:
                check_installed()
            except TrtLlmUnavailable as error:
                raise EngineConfigError(str(error)) from error
            settings = _trtllm_settings(config, serving=True)
            return TrtLlmEngine(settings, max_batch_size=config.max_batch_size)
        case "sim":
            from engines.sim import SimEngine

            return SimEngine(_sim_config(config))
        case _:
            assert_never(config.engine)


def describe_engine(config: ServeConfig) -> str:
    """The validated configuration the chosen engine would start with, for people to read."""
    match config.engine:
        case "native":
            native = dataclasses.asdict(_native_config(config))
            native.pop("progress", None)
            native["speculation"] = config.native.speculation.value
            native["weights"] = config.native.weights
            return json.dumps({"engine": "native", **native}, indent=2, sort_keys=True, default=str)
        case "trtllm":
            from engines.trtllm.settings import render_settings

            return render_settings(_trtllm_settings(config, serving=False))
        case "sim":
            sim = dataclasses.asdict(_sim_config(config))
            sim["mode"] = config.sim.mode
            return json.dumps({"engine": "sim", **sim}, indent=2, sort_keys=True, default=str)
        case _:
            assert_never(config.engine)
