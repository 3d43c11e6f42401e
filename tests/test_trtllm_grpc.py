"""The TensorRT-LLM adapter through the full gRPC API on 127.0.0.1, against its test double
(tests/trtllm_double.py: the real ``tensorrt_llm`` needs an NVIDIA GPU and cannot be
installed here).

Model info, tokenize, a streamed generation, a session with a cancel, an abort. The
tokenizer is real: SmolLM2's, saved as a Hugging Face tokenizer directory, so the double's
"model" produces ids of a real vocabulary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from engines.trtllm.engine import TrtLlmEngine
from service.config import ServeConfig
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.streams import Generation, collect, read_session
from tests.trtllm_double import DoubleState, double_tokens
from tests.trtllm_requests import MAX_DRAFT_LEN, make_settings

pytest_plugins = ["tests.trtllm_fixtures"]


# --- through the gRPC API -------------------------------------------------------------------------


@pytest.fixture
def trtllm_server(trt: DoubleState, model_dir: Path) -> Iterator[LiveServer]:
    engine = TrtLlmEngine(make_settings(model_dir), max_batch_size=4)
    live, thread = serve_in_thread(ServeConfig(port=0, default_max_tokens=64), engine=engine)
    yield live
    stop_live_server(live, thread)


@pytest.fixture
async def grpc_channel(trtllm_server: LiveServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(trtllm_server.address) as opened:
        yield opened


async def test_grpc_model_info_and_tokenize(grpc_channel: aio.Channel) -> None:
    model = model_pb2_grpc.ModelServiceStub(grpc_channel)
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    assert info.engine == "trtllm" and info.context_length == 4096 and info.vocab_size == 49152
    assert info.speculative.enabled and info.speculative.method == "eagle3"
    assert info.speculative.draft_length == MAX_DRAFT_LEN
    assert info.has_chat_template and set(info.eos_token_ids) == {0, 2}
    ids = (await model.Tokenize(model_pb2.TokenizeRequest(text="Hello, world"))).token_ids
    assert (await model.Detokenize(model_pb2.DetokenizeRequest(token_ids=ids))).text == "Hello, world"
    chat = generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content="Hi")])
    rendered = (await model.Tokenize(model_pb2.TokenizeRequest(chat=chat))).rendered_prompt
    assert rendered.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


async def test_grpc_generate_streams_the_double_models_tokens(
    grpc_channel: aio.Channel, trt: DoubleState
) -> None:
    generation = generation_pb2_grpc.GenerationServiceStub(grpc_channel)
    model = model_pb2_grpc.ModelServiceStub(grpc_channel)
    request_ = generation_pb2.GenerateRequest(
        text="Once upon a time",
        sampling=generation_pb2.SamplingParams(temperature=0.0),
        stopping=generation_pb2.StoppingCriteria(max_tokens=12, ignore_eos=True),
    )
    result = await collect(generation.Generate(request_))
    prompt = list((await model.Tokenize(model_pb2.TokenizeRequest(text="Once upon a time"))).token_ids)
    assert result.token_ids == double_tokens(prompt, 12)
    assert result.reason == generation_pb2.FINISH_REASON_LENGTH
    assert (
        result.text == (await model.Detokenize(model_pb2.DetokenizeRequest(token_ids=result.token_ids))).text
    )
    assert any(len(delta.token_ids) > 1 for delta in result.deltas)  # EAGLE-3 steps, unsplit
    assert trt.llm.submitted[-1].given["max_tokens"] == 12


async def test_grpc_session_with_a_cancel(grpc_channel: aio.Channel, trt: DoubleState) -> None:
    generation = generation_pb2_grpc.GenerationServiceStub(grpc_channel)

    def start(request_id: str, max_tokens: int) -> generation_pb2.SessionRequest:
        return generation_pb2.SessionRequest(
            start=generation_pb2.GenerateRequest(
                request_id=request_id,
                text=f"Story {request_id}",
                stopping=generation_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
            )
        )

    call = generation.Session()
    await call.write(start("a", 10))
    await call.write(start("b", 3000))
    results: dict[str, Generation] = {"a": Generation(), "b": Generation()}
    cancel_sent = False
    while not all(r.finished or r.error for r in results.values()):
        response = await read_session(call)
        event = response.WhichOneof("event")
        assert event is not None
        results[response.request_id].add(event, response)
        if response.request_id == "b" and event == "delta" and not cancel_sent:
            await call.write(
                generation_pb2.SessionRequest(cancel=generation_pb2.SessionCancel(request_id="b"))
            )
            cancel_sent = True
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK
    assert results["a"].reason == generation_pb2.FINISH_REASON_LENGTH and len(results["a"].token_ids) == 10
    assert results["b"].reason == generation_pb2.FINISH_REASON_CANCELLED
    assert 0 < len(results["b"].token_ids) < 3000
    assert len(trt.llm.aborted_ids) == 1 and trt.llm.running_requests == 0


async def test_grpc_abort_cancels_a_generation(grpc_channel: aio.Channel, trt: DoubleState) -> None:
    generation = generation_pb2_grpc.GenerationServiceStub(grpc_channel)
    request_ = generation_pb2.GenerateRequest(
        request_id="long",
        text="Tell me everything",
        stopping=generation_pb2.StoppingCriteria(max_tokens=3000, ignore_eos=True),
    )
    stream = generation.Generate(request_)
    result = Generation()
    aborted = False
    async for response in stream:
        event = response.WhichOneof("event")
        assert event is not None
        result.add(event, response)
        if event == "delta" and not aborted:
            reply = await generation.Abort(generation_pb2.AbortRequest(request_id="long"))
            assert reply.cancelled
            aborted = True
    assert result.reason == generation_pb2.FINISH_REASON_CANCELLED
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]
