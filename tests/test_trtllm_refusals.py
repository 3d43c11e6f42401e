"""Honest parameters on TensorRT-LLM: what a release would drop is refused, never sent.

Through the gRPC API on 127.0.0.1, against the adapter's test double (tests/trtllm_double.py:
the real ``tensorrt_llm`` needs an NVIDIA GPU and cannot be installed here). GetModelInfo
lists, per release and configuration, the fields that are not honoured; a request setting
one is refused naming it; nothing accepted carries a field the double (which knows what each
release would ignore) reports as dropped.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from engines.trtllm.engine import TrtLlmEngine
from service.config import ServeConfig
from tests.live_servers import LiveServer, live_server_running
from tests.streams import bad_request, collect
from tests.trtllm_double import DoubleState, installed
from tests.trtllm_requests import MAX_DRAFT_LEN, make_settings

pytest_plugins = ["tests.trtllm_fixtures"]


# --- honest parameters: what the release would drop is refused, never sent ------------------------


@contextlib.contextmanager
def serving(model_dir: Path, version: str, **overrides: object) -> Iterator[tuple[LiveServer, DoubleState]]:
    """A gRPC server on the double playing ``version``, with make_settings(**overrides)."""
    line = "1.3" if version.startswith("1.3") else "1.2.1"
    with installed(version) as state:
        engine = TrtLlmEngine(make_settings(model_dir, release=line, **overrides), max_batch_size=4)
        with live_server_running(ServeConfig(port=0, default_max_tokens=8), engine=engine) as live:
            yield live, state


def generate_request(
    sampling: generation_pb2.SamplingParams | None = None,
    speculative: generation_pb2.SpeculativeOptions | None = None,
) -> generation_pb2.GenerateRequest:
    return generation_pb2.GenerateRequest(
        text="Tell me a story",
        sampling=sampling,
        speculative=speculative,
        stopping=generation_pb2.StoppingCriteria(max_tokens=4, ignore_eos=True),
    )


async def refusal(address: str, request_: generation_pb2.GenerateRequest) -> dict[str, str] | None:
    """The field violations the server answers ``request_`` with, or None when it generated."""
    async with aio.insecure_channel(address) as channel:
        generation = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            result = await collect(generation.Generate(request_))
        except aio.AioRpcError as error:
            failed = error
        else:
            assert result.reason == generation_pb2.FINISH_REASON_LENGTH
            return None
    assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT, failed
    return bad_request(failed)


async def model_info(address: str) -> model_pb2.GetModelInfoResponse:
    async with aio.insecure_channel(address) as channel:
        return await model_pb2_grpc.ModelServiceStub(channel).GetModelInfo(model_pb2.GetModelInfoRequest())


async def test_grpc_model_info_says_what_1_2_1_honours(model_dir: Path) -> None:
    with serving(model_dir, "1.2.1") as (live, _):
        info = await model_info(live.address)
    unsupported = {item.field: item for item in info.unsupported_fields}
    assert set(unsupported) == {
        "sampling.top_p",
        "sampling.min_p",
        "sampling.logit_bias",
        "sampling.seed",
        "sampling.repetition_penalty",
        "sampling.presence_penalty",
        "sampling.frequency_penalty",
        "speculative.draft_length",
    }
    assert "TorchSampler" in unsupported["sampling.repetition_penalty"].reason
    assert unsupported["sampling.repetition_penalty"].allowed == 1.0
    assert unsupported["speculative.draft_length"].allowed == MAX_DRAFT_LEN
    assert not unsupported["sampling.seed"].HasField("allowed")
    assert {"sampling.temperature", "sampling.top_k", "stopping.stop", "output.logprobs"} <= set(
        info.honored_fields
    )
    assert not set(info.honored_fields) & set(unsupported)
    assert list(info.speculative.available_methods) == ["eagle3"]


P = generation_pb2.SamplingParams
S = generation_pb2.SpeculativeOptions


@pytest.mark.parametrize(
    ("sampling", "speculative", "field", "words"),
    [
        (P(temperature=0.8, repetition_penalty=1.3), None, "sampling.repetition_penalty", "TorchSampler"),
        (P(temperature=0.8, presence_penalty=0.5), None, "sampling.presence_penalty", "1.2.1"),
        (P(frequency_penalty=-0.5), None, "sampling.frequency_penalty", "PR #16485"),
        (P(temperature=0.8, seed=7), None, "sampling.seed", "per-request seed"),
        (P(temperature=0.8, top_p=0.9), None, "sampling.top_p", "temperature and top-k only"),
        (P(temperature=0.8, min_p=0.1), None, "sampling.min_p", "temperature and top-k only"),
        (None, S(method=S.SPECULATIVE_METHOD_OFF), "speculative.method", "off is not available"),
        (None, S(draft_length=2), "speculative.draft_length", "max_draft_len (3)"),
    ],
)
async def test_grpc_refuses_what_1_2_1_would_silently_drop(
    model_dir: Path,
    sampling: generation_pb2.SamplingParams | None,
    speculative: generation_pb2.SpeculativeOptions | None,
    field: str,
    words: str,
) -> None:
    with serving(model_dir, "1.2.1") as (live, state):
        violations = await refusal(live.address, generate_request(sampling, speculative))
        assert not state.llm.submitted  # nothing reached TensorRT-LLM
    assert violations is not None and field in violations, violations
    assert words in violations[field]


async def test_grpc_values_that_change_nothing_are_accepted(model_dir: Path) -> None:
    neutral = P(temperature=0.8, top_k=20, top_p=1.0, min_p=0.0, repetition_penalty=1.0, presence_penalty=0.0)
    with serving(model_dir, "1.2.1") as (live, state):
        assert await refusal(live.address, generate_request(neutral, S(draft_length=MAX_DRAFT_LEN))) is None
        assert (
            await refusal(live.address, generate_request(None, S(method=S.SPECULATIVE_METHOD_EAGLE3))) is None
        )
        given = state.llm.submitted[0].given
        assert (given["temperature"], given["top_k"]) == (pytest.approx(0.8), 20)
        assert state.llm.dropped == [set(), set()]


async def test_grpc_greedy_only_configuration_refuses_sampling(model_dir: Path) -> None:
    """1.2.1 one-model EAGLE-3 without allow_advanced_sampling: greedy, and it says so."""
    speculative = {
        "decoding_type": "Eagle3",
        "max_draft_len": MAX_DRAFT_LEN,
        "speculative_model_dir": "/models/eagle3",
        "eagle3_one_model": True,
    }
    with serving(model_dir, "1.2.1", speculative_config=speculative) as (live, state):
        violations = await refusal(live.address, generate_request(P(temperature=0.7)))
        assert violations is not None and "allow_advanced_sampling" in violations["sampling.temperature"]
        assert await refusal(live.address, generate_request(P(temperature=0.0))) is None
        assert await refusal(live.address, generate_request()) is None  # unset: greedy, not 1.0
        assert [params.given["temperature"] for params in state.llm.submitted] == [0.0, 0.0]
        assert state.llm.dropped == [set(), set()]


async def test_grpc_1_3_applies_penalties_and_seed_where_it_can(model_dir: Path) -> None:
    penalised = P(temperature=0.8, seed=3, repetition_penalty=1.2, frequency_penalty=0.5)
    with serving(model_dir, "1.3.0rc27") as (live, state):
        violations = await refusal(live.address, generate_request(penalised))
        assert violations is not None and set(violations) == {
            "sampling.repetition_penalty",
            "sampling.frequency_penalty",
        }
        assert "enable_penalty" in violations["sampling.repetition_penalty"]
        assert not state.llm.submitted
    speculative = {
        "decoding_type": "Eagle3",
        "max_draft_len": MAX_DRAFT_LEN,
        "speculative_model": "/models/eagle3",
        "enable_penalty": True,
    }
    with serving(model_dir, "1.3.0rc27", speculative_config=speculative) as (live, state):
        assert await refusal(live.address, generate_request(penalised)) is None
        given = state.llm.submitted[-1].given
        assert (given["seed"], given["repetition_penalty"]) == (3, pytest.approx(1.2))
        assert state.llm.dropped == [set()]
    with serving(model_dir, "1.3.0rc27", speculative_config=None) as (live, state):
        info = await model_info(live.address)
        assert [item.field for item in info.unsupported_fields] == ["speculative.draft_length"]
        assert await refusal(live.address, generate_request(P(temperature=0.5, min_p=0.2, seed=1))) is None
        assert state.llm.dropped == [set()]


CONFIGURATIONS: list[tuple[str, dict[str, object]]] = [
    ("1.2.1", {}),
    ("1.2.1", {"speculative_config": None}),
    ("1.2.1", {"speculative_config": None, "sampler_type": "TRTLLMSampler"}),
    (
        "1.2.1",
        {
            "speculative_config": {
                "decoding_type": "Eagle3",
                "max_draft_len": MAX_DRAFT_LEN,
                "speculative_model_dir": "/m",
                "eagle3_one_model": True,
            }
        },
    ),
    ("1.3.0rc27", {}),
    ("1.3.0rc27", {"speculative_config": None}),
]


@pytest.mark.parametrize(("version", "overrides"), CONFIGURATIONS)
async def test_no_accepted_request_has_a_field_the_release_drops(
    model_dir: Path, version: str, overrides: dict[str, object]
) -> None:
    """Random requests: each is refused naming fields GetModelInfo lists, or nothing in it is dropped.

    The double knows, per release, what TensorRT-LLM would accept and ignore
    (``DoubleLLM.dropped``); the adapter must never let such a request through.
    """
    rng = random.Random(f"{version}{sorted(overrides)}")
    with serving(model_dir, version, **overrides) as (live, state):
        unsupported = {item.field for item in (await model_info(live.address)).unsupported_fields}
        accepted = refused = 0
        for _ in range(40):
            sampling = P()
            for name, values in SAMPLING_VALUES.items():
                if rng.random() < 0.35:
                    setattr(sampling, name, rng.choice(values))
            violations = await refusal(live.address, generate_request(sampling))
            if violations is None:
                accepted += 1
                assert state.llm.dropped[-1] == set(), sampling
            else:
                refused += 1
                assert set(violations) <= unsupported, violations
        assert len(state.llm.dropped) == accepted and accepted > 0


SAMPLING_VALUES: dict[str, list[float | int]] = {
    "temperature": [0.0, 0.5, 1.3],
    "top_p": [1.0, 0.8],
    "top_k": [1, 40],
    "min_p": [0.0, 0.05],
    "seed": [0, 12345],
    "repetition_penalty": [1.0, 1.15],
    "presence_penalty": [0.0, 0.4],
    "frequency_penalty": [0.0, -0.3],
}
