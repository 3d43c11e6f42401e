"""``tokenwire serve --engine sim``: the paced simulation engine behind the real gRPC API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from engines.sim import step_sizes
from service.config import ServeConfig, SimOptions
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.streams import collect


@pytest.fixture(scope="module")
def sim_server() -> Iterator[LiveServer]:
    live, thread = serve_in_thread(ServeConfig(port=0, engine="sim", sim=SimOptions(step_ms=1.0, seed=7)))
    yield live
    stop_live_server(live, thread)


async def test_sim_streams_the_replayable_schedule(sim_server: LiveServer) -> None:
    async with aio.insecure_channel(sim_server.address) as channel:
        info = await model_pb2_grpc.ModelServiceStub(channel).GetModelInfo(model_pb2.GetModelInfoRequest())
        assert info.engine == "sim" and "simulated" in info.model
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        request = generation_pb2.GenerateRequest(
            request_id="sim-1",
            text="hello",
            stopping=generation_pb2.StoppingCriteria(max_tokens=40, ignore_eos=True),
        )
        result = await collect(stub.Generate(request))
    assert len(result.token_ids) == 40 and result.text
    assert result.finished is not None and result.reason == generation_pb2.FINISH_REASON_LENGTH
    # The client can replay the engine's per-step draws from the request id and seed.
    sizes = step_sizes("sim-1", acceptance=0.81, max_draft=3, seed=7)
    steps, emitted = 0, 0
    while emitted < 40:
        emitted += next(sizes)
        steps += 1
    assert result.finished.speculative.decode_steps == steps


def test_config_show_names_the_mode_defaults() -> None:
    show = [sys.executable, "-m", "service.cli", "config", "show", "--engine", "sim"]
    shown = subprocess.run(
        [*show, "--sim-mode", "throughput"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"mode": "throughput"' in shown and '"max_batch_size": 512' in shown
    bad = subprocess.run(
        [*show, "--sim-step-ms", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "step_interval_s" in bad.stderr
