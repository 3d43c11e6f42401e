"""Bounded work and bounded answers for any input (issue 11, items 2, 3, 4 and 8).

Oversized input is refused by cheap checks before any tokenizing; large input is
tokenized off the event loop; error statuses stay a few KB whatever was sent;
Abort and Session validate request ids and never echo an unbounded one back.
"""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
import structlog
from grpc import aio
from grpc_status import rpc_status
from tokenwire.v1 import generation_pb2, model_pb2

from engines.native.tokenizer import NativeTokenizer
from service import errors
from service.metrics import Metrics, NoMetrics
from service.offload import Offload, PrepareQueueFull
from service.rejections import BURST, log_failure, rejected
from service.validation import MAX_CHAT_MESSAGES
from tests.streams import bad_request, read_session
from tests.stubs import GenerationStub, ModelStub

STATUS_BUDGET = 4096
"""Bytes a status (message and details) may take: far below the 8-16 KB metadata limits of clients."""


def _status_bytes(error: aio.AioRpcError) -> int:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError carries grpc.Call's trailing metadata
    assert status is not None
    return int(status.ByteSize())


def _chat(n: int, role: str = "user") -> generation_pb2.Chat:
    return generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role=role, content="hi")] * n)


async def test_a_chat_of_too_many_messages_is_refused_before_rendering(
    generation: GenerationStub, model: ModelStub
) -> None:
    chat = _chat(100_000)
    with pytest.raises(aio.AioRpcError) as caught:
        await generation.Generate(generation_pb2.GenerateRequest(chat=chat)).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_CHAT_MESSAGES} messages" in bad_request(caught.value)["chat.messages"]
    with pytest.raises(aio.AioRpcError) as caught:
        await model.Tokenize(model_pb2.TokenizeRequest(chat=chat))
    assert "chat.messages" in bad_request(caught.value)


async def test_text_too_long_for_the_context_is_refused_by_its_size(
    generation: GenerationStub, model: ModelStub
) -> None:
    text = "word " * 800_000  # 4 MB
    with pytest.raises(aio.AioRpcError) as caught:
        await generation.Generate(generation_pb2.GenerateRequest(text=text)).read()
    assert "bytes of text" in bad_request(caught.value)["text"]
    with pytest.raises(aio.AioRpcError) as caught:
        await model.Tokenize(model_pb2.TokenizeRequest(text=text))
    assert "bytes of text" in bad_request(caught.value)["text"]


async def test_many_bad_elements_give_a_small_status_with_a_count(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        text="Hi",
        stopping=generation_pb2.StoppingCriteria(stop_token_ids=[10**9 + i for i in range(60)]),
    )
    with pytest.raises(aio.AioRpcError) as caught:
        await generation.Generate(request).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(bad_request(caught.value)) == errors.MAX_VIOLATIONS
    assert "and 57 more field violations; the first 20 are in the details" in (caught.value.details() or "")
    assert _status_bytes(caught.value) < STATUS_BUDGET


async def test_a_huge_list_is_one_violation(generation: GenerationStub) -> None:
    for stopping in (
        generation_pb2.StoppingCriteria(stop_token_ids=[10**9] * 100_000),
        generation_pb2.StoppingCriteria(stop=["xyz"] * 100_000),
    ):
        with pytest.raises(aio.AioRpcError) as caught:
            await generation.Generate(generation_pb2.GenerateRequest(text="Hi", stopping=stopping)).read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(bad_request(caught.value)) == 1
        assert _status_bytes(caught.value) < STATUS_BUDGET


async def test_caller_strings_are_not_echoed_whole(generation: GenerationStub) -> None:
    role = "r" * 1000
    with pytest.raises(aio.AioRpcError) as caught:
        await generation.Generate(generation_pb2.GenerateRequest(chat=_chat(200, role))).read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _status_bytes(caught.value) < STATUS_BUDGET
    assert "(1000 characters)" in bad_request(caught.value)["chat.messages[0].role"]


async def test_abort_validates_the_request_id(generation: GenerationStub) -> None:
    for bad_id in ("x" * 1_000_000, "x" * 129, "tab\there", ""):
        with pytest.raises(aio.AioRpcError) as caught:
            await generation.Abort(generation_pb2.AbortRequest(request_id=bad_id))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request_id" in bad_request(caught.value)
        assert _status_bytes(caught.value) < STATUS_BUDGET
    answer = await generation.Abort(generation_pb2.AbortRequest(request_id="not-running"))
    assert not answer.cancelled


async def test_a_session_start_with_a_huge_id_gets_an_error_without_it(generation: GenerationStub) -> None:
    call = generation.Session()
    start = generation_pb2.GenerateRequest(request_id="x" * 1_000_000, text="Hi")
    await call.write(generation_pb2.SessionRequest(start=start))
    response = await read_session(call)
    await call.done_writing()
    assert response.WhichOneof("event") == "error"
    assert response.request_id == ""
    assert response.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert response.ByteSize() < STATUS_BUDGET


async def test_large_inputs_are_tokenized_off_the_event_loop(
    model: ModelStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real_encode = NativeTokenizer.encode

    def encode(self: NativeTokenizer, text: str, *, add_special_tokens: bool = True) -> list[int]:
        threads.append(threading.current_thread().name)
        return list(real_encode(self, text, add_special_tokens=add_special_tokens))

    monkeypatch.setattr(NativeTokenizer, "encode", encode)
    await model.Tokenize(model_pb2.TokenizeRequest(text="Hello there"))
    await model.Tokenize(model_pb2.TokenizeRequest(text="Hello there. " * 2000))  # 26 KB
    assert threads[0] == "tokenwire-test-server"  # small: on the loop, where the hop would cost more
    assert threads[1].startswith("tokenwire-prepare")


async def test_the_offload_queue_is_bounded() -> None:
    offload = Offload(max_pending=1, retry_after_s=2.0)
    release = threading.Event()
    first = asyncio.ensure_future(offload.run(10**6, release.wait, 30))
    await asyncio.sleep(0.05)
    with pytest.raises(PrepareQueueFull) as caught:
        await offload.run(10**6, sum, [1, 2])
    assert caught.value.retry_after_s == 2.0
    assert await offload.run(10, sum, [1, 2]) == 3  # small work still runs inline
    release.set()
    assert await first is True
    assert await offload.run(10**6, sum, [1, 2]) == 3
    assert offload.pending == 0
    offload.shutdown()


def test_rejections_are_logged_once_each_and_rate_limited() -> None:
    error = errors.InvalidArgument([errors.FieldViolation("text", "must not be empty")])
    metrics = Metrics(process_collectors=False)
    with structlog.testing.capture_logs() as logs:
        for _ in range(BURST + 15):
            rejected(error, rpc="TestRejections", metrics=metrics)
    assert len(logs) == BURST
    assert logs[0]["log_level"] == "info" and logs[0]["first_violation"] == "text"
    # The logs are rate-limited; the count is not.
    counted = metrics.registry.get_sample_value(
        "tokenwire_requests_rejected_total", {"rpc": "TestRejections", "reason": "INVALID_ARGUMENT"}
    )
    assert counted == BURST + 15


def test_internal_failures_are_logged_with_their_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        failure = error
    with structlog.testing.capture_logs() as logs:
        log_failure(failure, rpc="Generate", metrics=NoMetrics())
    assert logs[0]["log_level"] == "error" and logs[0]["exc_info"] is failure


def test_long_texts_tokenize_and_decode_exactly_as_the_plain_calls_do() -> None:
    """Long inputs take the GIL-releasing batch calls; they must give the very same ids and text."""
    from engines.native.weights import default_gguf_path, load_weights

    tokenizer = NativeTokenizer(load_weights(default_gguf_path(), None, None).tokenizer)
    text = "Once upon a time, <|im_start|> in 2024, a fox\n\n   jumped. Ünïcödé 漢字 🦊 " * 400
    ids = tokenizer.encode(text)
    assert ids == tokenizer._tokenizer.encode(text, add_special_tokens=True).ids
    assert tokenizer.decode(ids) == tokenizer._tokenizer.decode(ids, skip_special_tokens=True)
