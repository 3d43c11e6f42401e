"""The one place that knows concrete engines: builds the engine the config names."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

import structlog

from engines.contract import Engine
from service.config import ServeConfig

log = structlog.get_logger(__name__)


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
                    progress=conversion_progress(),
                )
            )
        case _:
            assert_never(config.engine)
