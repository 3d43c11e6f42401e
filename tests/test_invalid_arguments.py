"""Every invalid field gets INVALID_ARGUMENT with a BadRequest violation naming it."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc import aio
from tokenwire.v1 import generation_pb2, model_pb2

from tests.streams import bad_request, collect
from tests.stubs import GenerationStub, ModelStub

G = generation_pb2

VOCAB = 49152
CONTEXT = 8192
HELLO = G.Chat(messages=[G.ChatMessage(role="user", content="Hello")])

CASES: list[tuple[str, G.GenerateRequest, str]] = [
    ("no input", G.GenerateRequest(), "input"),
    ("empty text", G.GenerateRequest(text=""), "text"),
    ("empty token ids", G.GenerateRequest(token_ids=G.TokenIds()), "token_ids.ids"),
    ("token id out of vocab", G.GenerateRequest(token_ids=G.TokenIds(ids=[1, VOCAB])), "token_ids.ids[1]"),
    ("no chat messages", G.GenerateRequest(chat=G.Chat()), "chat.messages"),
    (
        "unknown chat role",
        G.GenerateRequest(chat=G.Chat(messages=[G.ChatMessage(role="robot", content="hi")])),
        "chat.messages[0].role",
    ),
    ("request id too long", G.GenerateRequest(request_id="x" * 129, text="hi"), "request_id"),
    ("request id not printable", G.GenerateRequest(request_id="a\nb", text="hi"), "request_id"),
    (
        "negative temperature",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(temperature=-1)),
        "sampling.temperature",
    ),
    (
        "nan temperature",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(temperature=float("nan"))),
        "sampling.temperature",
    ),
    ("top_p zero", G.GenerateRequest(text="hi", sampling=G.SamplingParams(top_p=0.0)), "sampling.top_p"),
    (
        "top_p above one",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(top_p=1.01)),
        "sampling.top_p",
    ),
    ("top_k zero", G.GenerateRequest(text="hi", sampling=G.SamplingParams(top_k=0)), "sampling.top_k"),
    (
        "top_k above vocab",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(top_k=VOCAB + 1)),
        "sampling.top_k",
    ),
    ("min_p above one", G.GenerateRequest(text="hi", sampling=G.SamplingParams(min_p=2.0)), "sampling.min_p"),
    (
        "repetition penalty zero",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(repetition_penalty=0.0)),
        "sampling.repetition_penalty",
    ),
    (
        "presence penalty too big",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(presence_penalty=3.0)),
        "sampling.presence_penalty",
    ),
    (
        "frequency penalty too small",
        G.GenerateRequest(text="hi", sampling=G.SamplingParams(frequency_penalty=-2.5)),
        "sampling.frequency_penalty",
    ),
    (
        "max_tokens zero",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(max_tokens=0)),
        "stopping.max_tokens",
    ),
    (
        "max_tokens beyond context",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(max_tokens=CONTEXT)),
        "stopping.max_tokens",
    ),
    (
        "min_tokens above max_tokens",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(max_tokens=4, min_tokens=5)),
        "stopping.min_tokens",
    ),
    (
        "empty stop string",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(stop=["ok", ""])),
        "stopping.stop[1]",
    ),
    (
        "too many stop strings",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(stop=["s"] * 17)),
        "stopping.stop",
    ),
    (
        "stop token out of vocab",
        G.GenerateRequest(text="hi", stopping=G.StoppingCriteria(stop_token_ids=[VOCAB + 5])),
        "stopping.stop_token_ids[0]",
    ),
    (
        "top_logprobs too many",
        G.GenerateRequest(text="hi", output=G.OutputOptions(logprobs=True, top_logprobs=21)),
        "output.top_logprobs",
    ),
    (
        "top_logprobs without logprobs",
        G.GenerateRequest(text="hi", output=G.OutputOptions(top_logprobs=2)),
        "output.top_logprobs",
    ),
    ("zero timeout", G.GenerateRequest(text="hi", timeout=duration_pb2.Duration()), "timeout"),
    ("negative timeout", G.GenerateRequest(text="hi", timeout=duration_pb2.Duration(seconds=-1)), "timeout"),
    (
        "draft length zero",
        G.GenerateRequest(text="hi", speculative=G.SpeculativeOptions(draft_length=0)),
        "speculative.draft_length",
    ),
    (
        "draft length above 16",
        G.GenerateRequest(
            text="hi",
            speculative=G.SpeculativeOptions(
                method=G.SpeculativeOptions.SPECULATIVE_METHOD_NGRAM, draft_length=17
            ),
        ),
        "speculative.draft_length",
    ),
    (
        "unknown speculative method",
        G.GenerateRequest(text="hi", speculative=G.SpeculativeOptions(method=7)),  # type: ignore[arg-type]
        "speculative.method",
    ),
]


@pytest.mark.parametrize(
    ("request_message", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
async def test_invalid_field_is_named(
    generation: GenerationStub, request_message: G.GenerateRequest, field: str
) -> None:
    with pytest.raises(aio.AioRpcError) as caught:
        await collect(generation.Generate(request_message))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(caught.value)
    assert field in violations, violations
    assert field in (caught.value.details() or "")


async def test_all_violations_are_reported_at_once(generation: GenerationStub) -> None:
    request = G.GenerateRequest(
        text="hi",
        sampling=G.SamplingParams(temperature=-1, top_p=0.0),
        stopping=G.StoppingCriteria(max_tokens=0),
    )
    with pytest.raises(aio.AioRpcError) as caught:
        await collect(generation.Generate(request))
    assert {"sampling.temperature", "sampling.top_p", "stopping.max_tokens"} <= set(bad_request(caught.value))


async def test_prompt_longer_than_context_names_the_limits(generation: GenerationStub) -> None:
    request = G.GenerateRequest(token_ids=G.TokenIds(ids=[42] * (CONTEXT + 10)))
    with pytest.raises(aio.AioRpcError) as caught:
        await collect(generation.Generate(request))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert str(CONTEXT + 10) in details and str(CONTEXT) in details
    assert "token_ids" in bad_request(caught.value)


async def test_detokenize_rejects_ids_outside_the_vocabulary(model: ModelStub) -> None:
    with pytest.raises(aio.AioRpcError) as caught:
        await model.Detokenize(model_pb2.DetokenizeRequest(token_ids=[1, VOCAB]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "token_ids[1]" in bad_request(caught.value)


async def test_server_keeps_serving_after_bad_input(generation: GenerationStub) -> None:
    for _, request, _ in CASES[:5]:
        with pytest.raises(aio.AioRpcError):
            await collect(generation.Generate(request))
    ok = await collect(
        generation.Generate(G.GenerateRequest(chat=HELLO, stopping=G.StoppingCriteria(max_tokens=3)))
    )
    assert ok.finished is not None
