"""The one place that knows concrete engines: builds the engine the config names."""

from __future__ import annotations

from typing import assert_never

from engines.contract import Engine
from service.config import ServeConfig


def build_engine(config: ServeConfig) -> Engine:
    """An unstarted engine for ``config``. Imports the engine's module only when chosen."""
    match config.engine:
        case "native":
            from engines.native.engine import NativeEngine, NativeEngineConfig

            return NativeEngine(
                NativeEngineConfig(
                    gguf_path=config.model_path,
                    cache_dir=config.cache_dir,
                    max_batch_size=config.max_batch_size,
                    max_waiting=config.max_waiting,
                    threads=config.threads,
                )
            )
        case _:
            assert_never(config.engine)
