"""Load generator for tokenwire's gRPC API: token rates, latency percentiles, server CPU.

``driver.run`` drives a running server (tokenwire, or ``bench/floor_server.py``,
the bare grpc.aio floor) at several concurrency levels from several client
processes; ``stats`` reduces what the clients saw to one ``LevelResult`` per
level; ``report`` and ``plots`` show it; ``stats.compare`` sets tokenwire
against the floor. Command line: ``python -m tokenwire.loadgen run --help``.
"""

from tokenwire.loadgen.driver import DriverConfig, LoadError, SimParams, run
from tokenwire.loadgen.stats import Comparison, LevelResult, RequestRecord, compare, summarize

__all__ = [
    "Comparison",
    "DriverConfig",
    "LevelResult",
    "LoadError",
    "RequestRecord",
    "SimParams",
    "compare",
    "run",
    "summarize",
]
