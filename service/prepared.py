"""A validated generation request: what validation hands to the streaming side (and nothing more).

Its own module so that request mapping (``service.validation``) does not depend on the streaming
module (``service.generation``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.contract import EngineRequest


@dataclass(frozen=True, slots=True)
class PreparedGeneration:
    """A validated request: what the engine runs plus what the service does around it."""

    engine_request: EngineRequest
    samples: int = 1
    """How many samples of the prompt (GenerateRequest.n)."""
    stop_strings: tuple[str, ...] = ()
    include_token_ids: bool = True
    include_text: bool = True
    timeout_s: float | None = None
