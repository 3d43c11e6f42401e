"""Every way a TensorRT-LLM adapter's request ends early, and its errors, against the adapter's
test double (tests/trtllm_double.py: the real ``tensorrt_llm`` needs an NVIDIA GPU and cannot
be installed here).

Closing or cancelling the stream, cancel by id, shutdown: each aborts the request in the
executor and frees its slot; an executor error fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from engines.contract import EngineError, FinishReason, RequestId, TokenId
from engines.trtllm.engine import TrtLlmEngine
from tests.trtllm_double import DoubleState
from tests.trtllm_requests import PROMPT, make_settings, read_all, request

pytest_plugins = ["tests.trtllm_fixtures"]


# --- cancellation ---------------------------------------------------------------------------------


async def test_closing_the_stream_aborts_the_request(engine: TrtLlmEngine, trt: DoubleState) -> None:
    stream = engine.generate(request(max_tokens=3000))
    first = await anext(stream)
    assert first.token_ids and engine.load().active_requests == 1
    await stream.aclose()
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]
    assert engine.load().active_requests == 0


async def test_closing_an_unread_stream_aborts_the_request(engine: TrtLlmEngine, trt: DoubleState) -> None:
    stream = engine.generate(request(max_tokens=3000))
    await stream.aclose()
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]
    assert engine.load().active_requests == 0


async def test_cancel_by_id_ends_the_stream_cancelled(engine: TrtLlmEngine, trt: DoubleState) -> None:
    stream = engine.generate(request("victim", max_tokens=3000))
    await anext(stream)
    engine.cancel(RequestId("victim"))
    engine.cancel(RequestId("unknown"))  # a no-op
    rest = [output async for output in stream]
    assert rest[-1].finish_reason is FinishReason.CANCELLED and rest[-1].stats is not None
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]
    assert trt.llm.running_requests == 0 and engine.load().active_requests == 0


async def test_cancelling_the_reading_task_aborts_the_request(engine: TrtLlmEngine, trt: DoubleState) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(engine.generate(request(max_tokens=3000))) as stream:
            async for _ in stream:
                first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]
    assert engine.load().active_requests == 0


async def test_shutdown_ends_running_streams_cancelled(trt: DoubleState, model_dir: Path) -> None:
    engine = TrtLlmEngine(make_settings(model_dir))
    await engine.start()
    stream = engine.generate(request(max_tokens=3000))
    await anext(stream)
    trt.controls.step_delay_s = 3600.0  # the executor answers no more: the stream must end anyway
    await engine.shutdown()
    rest = [output async for output in stream]
    assert rest[-1].finish_reason is FinishReason.CANCELLED
    assert trt.llm.shutdown_called and trt.llm.aborted_ids == [trt.llm.results[-1].request_id]


# --- errors ---------------------------------------------------------------------------------------


async def test_an_executor_error_fails_only_its_request(engine: TrtLlmEngine, trt: DoubleState) -> None:
    doomed = (TokenId(666), *PROMPT)
    trt.controls.fail_prompts_starting_with = 666
    trt.controls.fail_after_steps = 2
    healthy = asyncio.create_task(read_all(engine, request("healthy", max_tokens=60)))
    with pytest.raises(EngineError, match="CUDA error"):
        await read_all(engine, request("doomed", prompt=doomed, max_tokens=60))
    outputs = await healthy
    assert outputs[-1].finish_reason is FinishReason.LENGTH
    assert len([t for o in outputs for t in o.token_ids]) == 60
    assert (await read_all(engine, request("after", max_tokens=3)))[-1].finish_reason is FinishReason.LENGTH


async def test_a_refused_submission_is_an_engine_error(engine: TrtLlmEngine) -> None:
    with pytest.raises(EngineError, match="max_seq_len"):
        engine.generate(request(max_tokens=10_000))  # prompt + max_tokens > max_seq_len 4096
    assert engine.load().active_requests == 0
