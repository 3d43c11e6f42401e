"""A paced simulation engine for load tests: the engine contract with no model behind it.

Never the default. It streams real token ids of a fixed passage at the pace of
NVIDIA's Llama 4 Maverick records (see ``config``), with per-request step
sizes a load client can replicate (``schedule.step_sizes``).
"""

from engines.sim.config import SimEngineConfig, SimMode
from engines.sim.engine import PASSAGE, SimEngine, load_tokenizer
from engines.sim.schedule import PacingReport, start_offset, step_sizes

__all__ = [
    "PASSAGE",
    "PacingReport",
    "SimEngine",
    "SimEngineConfig",
    "SimMode",
    "load_tokenizer",
    "start_offset",
    "step_sizes",
]
