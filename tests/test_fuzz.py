"""Fuzzing Generate and Session on live servers, the sim engine and the native engine (2,000 cases).

Every field of GenerateRequest and SessionRequest is drawn valid and invalid
(tests/fuzz_requests.py), and so are messages no protobuf API can build (invalid
UTF-8, cut short, unknown or mistyped fields); every answer is checked against the
contract (tests/fuzz_oracle.py): no INTERNAL, no UNKNOWN, no hang or reset, one
terminal event per Session start, no leaked engine slot, health SERVING throughout.

Runs are reproducible (``derandomize``) and bounded: no shrinking (a failure
prints the case that failed, summarised), small outputs, and cases still running
after a moment are cancelled. A failure here is a defect of the service: fix the
service, never the strategy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from grpc import aio
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from service.config import ServeConfig, SimOptions
from tests.fuzz_oracle import FuzzTarget, Tally, check_idle_and_serving, run_generates, run_raw, run_session
from tests.fuzz_requests import GenerateCall, ModelLimits, generate_calls, raw_calls, session_actions
from tests.live_servers import serve_in_thread, stop_live_server

CaseT = TypeVar("CaseT")

SIM = ServeConfig(
    port=0, engine="sim", sim=SimOptions(step_ms=1.0), max_batch_size=4, max_waiting=4, default_max_tokens=4
)
NATIVE = ServeConfig(port=0, engine="native", max_batch_size=4, max_waiting=4, default_max_tokens=2)
"""Small queues, so bursts meet RESOURCE_EXHAUSTED; short defaults, so absent max_tokens stays cheap."""


@dataclass(frozen=True, slots=True)
class Fuzzing:
    """A live server, the loop its cases run on, and what its model allows."""

    target: FuzzTarget
    loop: asyncio.AbstractEventLoop
    limits: ModelLimits

    def run(
        self, strategy: st.SearchStrategy[CaseT], check: Callable[[CaseT], Awaitable[None]], n: int
    ) -> None:
        """Check ``n`` cases drawn from ``strategy``, each followed by the idle-and-serving check."""

        async def check_then_settle(case: CaseT) -> None:
            await check(case)
            await check_idle_and_serving(self.target)

        @settings(
            max_examples=n,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(strategy)
        def case(value: CaseT) -> None:
            self.loop.run_until_complete(check_then_settle(value))

        tally = self.target.tally
        tally.outcomes.clear()
        tally.requests = 0
        case()
        self.loop.run_until_complete(check_idle_and_serving(self.target))
        print(f"\n{n} cases, {tally.requests} requests: {dict(sorted(tally.outcomes.items()))}")


@contextlib.contextmanager
def fuzzing(config: ServeConfig, patience_s: float) -> Iterator[Fuzzing]:
    live, thread = serve_in_thread(config)
    loop = asyncio.new_event_loop()

    async def connect() -> tuple[FuzzTarget, ModelLimits]:
        channel = aio.insecure_channel(live.address)
        model = model_pb2_grpc.ModelServiceStub(channel)
        info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
        target = FuzzTarget(
            generation=generation_pb2_grpc.GenerationServiceStub(channel),
            model=model,
            health=channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            ),
            channel=channel,
            patience_s=patience_s,
            tally=Tally(),
        )
        return target, ModelLimits(vocab_size=info.vocab_size, context_length=info.context_length)

    try:
        target, limits = loop.run_until_complete(connect())
        try:
            yield Fuzzing(target, loop, limits)
        finally:
            loop.run_until_complete(target.channel.close())
    finally:
        loop.close()
        stop_live_server(live, thread)


@pytest.fixture(scope="module")
def sim() -> Iterator[Fuzzing]:
    # The sim steps every millisecond: even a whole-context output is over in seconds.
    with fuzzing(SIM, patience_s=0.25) as opened:
        yield opened


@pytest.fixture(scope="module")
def native() -> Iterator[Fuzzing]:
    with fuzzing(NATIVE, patience_s=0.5) as opened:
        yield opened


def test_generate_sim(sim: Fuzzing) -> None:
    sim.run(generate_calls(sim.limits), lambda calls: run_generates(sim.target, calls), 750)


def test_session_sim(sim: Fuzzing) -> None:
    sim.run(session_actions(sim.limits), lambda actions: run_session(sim.target, actions), 450)


def test_undecodable_messages_sim(sim: Fuzzing) -> None:
    sim.run(raw_calls(sim.limits), lambda raw: run_raw(sim.target, raw), 550)


def test_generate_native(native: Fuzzing) -> None:
    native.run(generate_calls(native.limits), lambda calls: run_generates(native.target, calls), 150)


def test_session_native(native: Fuzzing) -> None:
    native.run(session_actions(native.limits), lambda actions: run_session(native.target, actions), 100)


def test_a_refused_id_is_aborted_cleanly_when_the_server_is_slow_to_refuse(sim: Fuzzing) -> None:
    """The oracle itself: on a slow machine a huge request is still being refused when the case's
    patience runs out, and its Abort carries the same invalid id; that Abort must be a clean refusal.
    (No patience at all makes every call take that path here.)"""
    impatient = dataclasses.replace(sim.target, patience_s=0.0)
    request = generation_pb2.GenerateRequest(
        request_id="," * 10_000,
        text="Hello",
        stopping=generation_pb2.StoppingCriteria(max_tokens=2),
    )
    sim.loop.run_until_complete(run_generates(impatient, [GenerateCall(request)]))
    sim.loop.run_until_complete(check_idle_and_serving(sim.target))
