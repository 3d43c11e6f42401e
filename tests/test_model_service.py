"""ModelService, health and reflection, through gRPC and through grpcurl."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from tokenwire.v1 import generation_pb2, model_pb2

from tests.conftest import server_config
from tests.health import health_check, health_watch
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.stubs import ModelStub

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


async def test_model_info_describes_the_embedded_model(model: ModelStub) -> None:
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    assert info.model == "SmolLM2-135M-Instruct"
    assert info.engine == "native"
    assert info.context_length == 8192 and info.vocab_size == 49152
    assert info.has_chat_template
    assert info.max_batch_size == 4 and info.default_max_tokens == 64
    assert 2 in info.eos_token_ids  # <|im_end|>
    # Prompt lookup by default: lossless, and verifying drafts costs about one step on this CPU.
    assert info.speculative.enabled and info.speculative.method == "eagle3"
    assert info.speculative.draft_length == 4


async def test_tokenize_detokenize_round_trip(model: ModelStub) -> None:
    text = "Tokenizers split text: naïve café, 東京, emoji 🚀, numbers 12345."
    ids = (await model.Tokenize(model_pb2.TokenizeRequest(text=text))).token_ids
    assert len(ids) > 10
    assert (await model.Detokenize(model_pb2.DetokenizeRequest(token_ids=ids))).text == text


async def test_tokenize_chat_renders_the_template(model: ModelStub) -> None:
    chat = generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content="Hi there")])
    response = await model.Tokenize(model_pb2.TokenizeRequest(chat=chat))
    assert response.rendered_prompt.startswith("<|im_start|>system\n")
    assert response.rendered_prompt.endswith("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
    kept = await model.Detokenize(
        model_pb2.DetokenizeRequest(token_ids=response.token_ids, keep_special_tokens=True)
    )
    assert kept.text == response.rendered_prompt


async def test_health_is_serving(channel: aio.Channel) -> None:
    check = health_check(channel)
    for service in ("", "tokenwire.v1.GenerationService", "tokenwire.v1.ModelService"):
        response = await check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_health_is_not_serving_until_the_model_is_loaded() -> None:
    """A second server: its port answers health while the model loads, then turns SERVING."""
    live, thread = await asyncio.to_thread(serve_in_thread, server_config(), wait_ready=False)
    try:
        async with aio.insecure_channel(live.address) as channel:
            watch = health_watch(channel)(health_pb2.HealthCheckRequest(service=""))
            statuses = []
            async for response in watch:
                statuses.append(response.status)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            watch.cancel()
            assert statuses[0] == health_pb2.HealthCheckResponse.NOT_SERVING
            assert statuses[-1] == health_pb2.HealthCheckResponse.SERVING
    finally:
        await asyncio.to_thread(stop_live_server, live, thread)


def _reflect(
    channel: grpc.Channel, service: str, request: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """One reflection exchange over ``service`` (v1 and v1alpha share their messages on the wire)."""
    call: grpc.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ] = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter([request])))


def _reflect_list(channel: grpc.Channel, service: str) -> list[str]:
    responses = _reflect(channel, service, reflection_pb2.ServerReflectionRequest(list_services=""))
    return sorted(s.name for s in responses[0].list_services_response.service)


@pytest.mark.parametrize(
    "service", ["grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"]
)
def test_reflection_lists_the_services(live_server: LiveServer, service: str) -> None:
    with grpc.insecure_channel(live_server.address) as channel:
        names = _reflect_list(channel, service)
    assert {
        "tokenwire.v1.GenerationService",
        "tokenwire.v1.ModelService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(names)


@pytest.mark.parametrize(
    "service", ["grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"]
)
def test_reflection_resolves_symbols(live_server: LiveServer, service: str) -> None:
    with grpc.insecure_channel(live_server.address) as channel:
        for symbol in ("tokenwire.v1.GenerationService", "grpc.reflection.v1.ServerReflection"):
            request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
            (response,) = _reflect(channel, service, request)
            assert response.file_descriptor_response.file_descriptor_proto, symbol


def _grpcurl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [GRPCURL, "-plaintext", *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_grpcurl_list_describe_and_stream(live_server: LiveServer) -> None:
    address = live_server.address
    services = _grpcurl(address, "list").split()
    assert "tokenwire.v1.GenerationService" in services and "tokenwire.v1.ModelService" in services
    described = _grpcurl(address, "describe", "tokenwire.v1.GenerationService")
    assert (
        "rpc Generate ( .tokenwire.v1.GenerateRequest ) returns ( stream .tokenwire.v1.GenerateResponse );"
        in described
    )
    request = {
        "chat": {"messages": [{"role": "user", "content": "What is the capital of France?"}]},
        "sampling": {"temperature": 0},
    }
    out = _grpcurl("-d", json.dumps(request), address, "tokenwire.v1.GenerationService/Generate")
    decoder = json.JSONDecoder()
    events, position = [], 0
    while position < len(out.strip()):
        event, position = decoder.raw_decode(out, position)
        events.append(event)
        while position < len(out) and out[position].isspace():
            position += 1
    assert "started" in events[0] and "finished" in events[-1]
    assert events[-1]["finished"]["reason"] == "FINISH_REASON_END_OF_SEQUENCE"
    assert "Paris" in "".join(e.get("delta", {}).get("text", "") for e in events)
