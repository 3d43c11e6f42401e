"""No request can end another one (issue 11, item 1), through the real gRPC API and model.

Each case runs while a greedy "bystander" generation is streaming on the same
server: the bystander must always finish normally with every token it asked for,
and the case itself must never answer INTERNAL (a documented value is either
served or refused with INVALID_ARGUMENT / OUT_OF_RANGE).
"""

from __future__ import annotations

import asyncio

import grpc
from grpc import aio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenwire.v1 import generation_pb2, generation_pb2_grpc
from tokenwire.v1.generation_pb2 import GenerateRequest, SamplingParams, StoppingCriteria

from tests.live_servers import LiveServer
from tests.streams import Generation, collect, from_responses, read_generate, rest_of_generate

VOCAB = 49152  # SmolLM2's vocabulary
BYSTANDER_TOKENS = 24


def _bystander() -> GenerateRequest:
    return GenerateRequest(
        text="Count from one to one hundred:",
        sampling=SamplingParams(temperature=0.0),
        stopping=StoppingCriteria(max_tokens=BYSTANDER_TOKENS, ignore_eos=True),
    )


async def _beside_a_bystander(address: str, case: GenerateRequest) -> tuple[Generation, grpc.StatusCode]:
    """Run ``case`` while a bystander streams; the bystander's generation and the case's status."""
    async with aio.insecure_channel(address) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        bystander_call = stub.Generate(_bystander())
        # Wait for the bystander's first token, so that the case joins its batch.
        first = [await read_generate(bystander_call), await read_generate(bystander_call)]
        rest = asyncio.ensure_future(rest_of_generate(bystander_call))
        code = grpc.StatusCode.OK
        try:
            result = await collect(stub.Generate(case, timeout=60))
            assert result.finished is not None
        except aio.AioRpcError as error:
            code = error.code()
        return from_responses(first + await rest), code


def _check(live_server: LiveServer, case: GenerateRequest) -> grpc.StatusCode:
    bystander, code = asyncio.run(_beside_a_bystander(live_server.address, case))
    assert bystander.reason == generation_pb2.FINISH_REASON_LENGTH
    assert len(bystander.token_ids) == BYSTANDER_TOKENS
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), code
    return code


def test_a_temperature_below_float_precision_hurts_nobody(live_server: LiveServer) -> None:
    case = GenerateRequest(
        text="Hello", sampling=SamplingParams(temperature=1e-40), stopping=StoppingCriteria(max_tokens=8)
    )
    assert _check(live_server, case) == grpc.StatusCode.OK


def test_a_tiny_repetition_penalty_hurts_nobody(live_server: LiveServer) -> None:
    case = GenerateRequest(
        text="Hello",
        sampling=SamplingParams(temperature=0.7, repetition_penalty=1e-40),
        stopping=StoppingCriteria(max_tokens=8),
    )
    assert _check(live_server, case) == grpc.StatusCode.OK


def _f32(low: float, high: float, *, exclude_min: bool = False) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=32, exclude_min=exclude_min, allow_nan=False)


@st.composite
def _sampling(draw: st.DrawFn) -> SamplingParams:
    """Every sampling field, each set or not, over its full documented range."""
    fields = {
        "temperature": _f32(0.0, 100.0),
        "top_p": _f32(0.0, 1.0, exclude_min=True),
        "top_k": st.integers(1, VOCAB),
        "min_p": _f32(0.0, 1.0),
        "seed": st.integers(0, 2**64 - 1),
        "repetition_penalty": _f32(0.0, 10.0, exclude_min=True),
        "presence_penalty": _f32(-2.0, 2.0),
        "frequency_penalty": _f32(-2.0, 2.0),
    }
    chosen = {name: draw(value) for name, value in fields.items() if draw(st.booleans())}
    return SamplingParams(**chosen)  # type: ignore[arg-type]  # values drawn per field above


@st.composite
def _stopping(draw: st.DrawFn) -> StoppingCriteria:
    """Every stopping field over its documented range; outputs stay short so cases stay quick."""
    max_tokens = draw(st.integers(1, 6))
    return StoppingCriteria(
        max_tokens=max_tokens,
        min_tokens=draw(st.integers(0, max_tokens)),
        stop=draw(st.lists(st.text(min_size=1, max_size=256), max_size=16)),
        stop_token_ids=draw(st.lists(st.integers(0, VOCAB - 1), max_size=64)),
        ignore_eos=draw(st.booleans()),
    )


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sampling=_sampling(), stopping=_stopping())
def test_no_sampling_or_stopping_value_hurts_another_request(
    live_server: LiveServer, sampling: SamplingParams, stopping: StoppingCriteria
) -> None:
    case = GenerateRequest(text="Tell me a story.", sampling=sampling, stopping=stopping)
    assert _check(live_server, case) == grpc.StatusCode.OK
