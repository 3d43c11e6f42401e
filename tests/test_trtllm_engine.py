"""The TensorRT-LLM adapter against a test double of ``tensorrt_llm`` (the real one needs an NVIDIA GPU).

Unit tests check the mapping both ways and every cancellation path; the last
tests drive the adapter through the full gRPC API on 127.0.0.1. The tokenizer
is real: SmolLM2's, saved as a Hugging Face tokenizer directory, so the
double's "model" produces ids of a real vocabulary.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import random
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from engines.contract import (
    EngineError,
    FinishReason,
    RequestId,
    SamplingParams,
    StoppingParams,
    TokenId,
)
from engines.trtllm.availability import (
    CHECKED_AGAINST,
    TrtLlmUnavailable,
    check_installed,
    require_tensorrt_llm,
)
from engines.trtllm.engine import TrtLlmEngine
from engines.trtllm.llm_build import TrtLlmConfigError, llm_kwargs
from engines.trtllm.presets import PRESETS
from engines.trtllm.settings import TrtLlmSettings, load_settings
from engines.trtllm.versions import installed_version, release_named
from service.config import ServeConfig
from service.server import TokenwireServer
from tests.conftest import LiveServer, stop_live_server
from tests.streams import Generation, bad_request, collect, read_session
from tests.trtllm_double import (
    DoubleCudaGraphConfig,
    DoubleEagle3DecodingConfig,
    DoubleEagleDecodingConfig,
    DoubleKvCacheConfig,
    DoubleLLM,
    DoubleMoeConfig,
    DoubleState,
    double_tokens,
    installed,
    tokens_per_step,
)
from tests.trtllm_requests import MAX_DRAFT_LEN, PROMPT, make_settings, read_all, request

pytest_plugins = ["tests.trtllm_fixtures"]


@pytest.fixture
async def engine(trt: DoubleState, model_dir: Path) -> AsyncIterator[TrtLlmEngine]:
    started = TrtLlmEngine(make_settings(model_dir), max_batch_size=4)
    await started.start()
    yield started
    await started.shutdown()


# --- availability --------------------------------------------------------------------------------


def test_without_the_package_require_names_the_ngc_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # makes `import tensorrt_llm` fail
    with pytest.raises(TrtLlmUnavailable) as raised:
        require_tensorrt_llm()
    message = str(raised.value)
    assert "nvcr.io/nvidia/tensorrt-llm/release:1.2.1" in message
    assert "tensorrt-llm==1.2.1 --extra-index-url https://pypi.nvidia.com" in message
    assert CHECKED_AGAINST in message
    with pytest.raises(TrtLlmUnavailable):
        check_installed()
    assert isinstance(raised.value, EngineError)


def test_with_the_double_require_imports_it(trt: DoubleState) -> None:
    check_installed()
    assert require_tensorrt_llm().__version__ == "1.2.1"
    assert installed_version() == "1.2.1"  # from the package metadata, without importing


# --- settings → LLM(...) -------------------------------------------------------------------------


def test_nested_sections_become_the_real_classes(trt: DoubleState, model_dir: Path) -> None:
    llmapi = importlib.import_module("tensorrt_llm.llmapi")
    kwargs = llm_kwargs(make_settings(model_dir).llm_args, llmapi)
    kv, graphs, moe, spec = (
        kwargs[k] for k in ("kv_cache_config", "cuda_graph_config", "moe_config", "speculative_config")
    )
    assert isinstance(kv, DoubleKvCacheConfig) and kv.fields == {
        "free_gpu_memory_fraction": 0.5,
        "enable_block_reuse": True,
    }
    assert isinstance(graphs, DoubleCudaGraphConfig) and graphs.fields == {
        "max_batch_size": 8,
        "enable_padding": True,
    }
    assert isinstance(moe, DoubleMoeConfig) and moe.fields == {"backend": "CUTLASS"}
    assert type(spec) is DoubleEagle3DecodingConfig  # decoding_type is the discriminator, not a field
    assert spec.fields == {
        "max_draft_len": 3,
        "speculative_model_dir": "/models/eagle3",
        "eagle3_one_model": True,
        "allow_advanced_sampling": True,
    }
    assert kwargs["max_seq_len"] == 4096 and kwargs["disable_overlap_scheduler"] is False

    eagle = llm_kwargs(
        {"model": "m", "speculative_config": {"decoding_type": "Eagle", "max_draft_len": 2}}, llmapi
    )
    assert type(eagle["speculative_config"]) is DoubleEagleDecodingConfig
    assert llm_kwargs({"model": "m", "cuda_graph_config": None}, llmapi)["cuda_graph_config"] is None


@pytest.mark.parametrize(
    ("llm_args", "message"),
    [
        ({"lora_config": {"max_lora_rank": 8}}, "llm_args.lora_config is a nested section"),
        ({"speculative_config": {"decoding_type": "Medusa"}}, "decoding_type must be one of Eagle, Eagle3"),
        ({"kv_cache_config": {"free_gpu_memory_fraction": 0.5, "no_such_field": 1}}, "no_such_field"),
    ],
)
def test_unusable_sections_are_refused_clearly(
    trt: DoubleState, llm_args: dict[str, object], message: str
) -> None:
    llmapi = importlib.import_module("tensorrt_llm.llmapi")
    with pytest.raises(TrtLlmConfigError, match=message):
        llm_kwargs({"model": "m", **llm_args}, llmapi)


async def test_start_applies_env_before_import_and_builds_the_llm(
    engine: TrtLlmEngine, trt: DoubleState
) -> None:
    assert trt.env_at_import is not None and trt.env_at_import["TRTLLM_ENABLE_PDL"] == "1"
    kwargs = trt.llm.kwargs
    assert isinstance(kwargs["kv_cache_config"], DoubleKvCacheConfig)
    assert isinstance(kwargs["speculative_config"], DoubleEagle3DecodingConfig)
    assert kwargs["max_batch_size"] == 4  # not in llm_args: the constructor's value is passed on
    info = engine.info
    assert (info.engine_name, info.model_name, info.context_length) == (
        "trtllm",
        engine_model_name(engine),
        4096,
    )
    assert info.vocab_size == 49152 and info.max_batch_size == 4
    assert (info.speculative.method, info.speculative.draft_length) == ("eagle3", MAX_DRAFT_LEN)
    assert engine.tokenizer.eos_token_ids == {TokenId(2), TokenId(0)}  # tokenizer + generation_config.json
    # Byte-level BPE, checked against transformers' decode: detokenization needs no decode calls.
    pieces = engine.tokenizer.byte_pieces
    assert pieces is not None and len(pieces) == info.vocab_size


def engine_model_name(engine: TrtLlmEngine) -> str:
    return Path(str(engine._settings.llm_args["model"])).name


async def test_context_length_falls_back_to_the_model_config(trt: DoubleState, model_dir: Path) -> None:
    settings = make_settings(model_dir, max_batch_size=64)
    args = {k: v for k, v in settings.llm_args.items() if k != "max_seq_len"}
    engine = TrtLlmEngine(dataclasses.replace(settings, llm_args=args), max_batch_size=4)
    await engine.start()
    try:
        assert engine.info.max_batch_size == 64  # the settings win over the constructor
        assert engine.info.context_length == 8192  # the double's LLM.args.max_seq_len (TensorRT-LLM's own)
    finally:
        await engine.shutdown()


# --- request mapping ------------------------------------------------------------------------------


async def test_every_request_field_reaches_its_sampling_params_field(
    engine: TrtLlmEngine, trt: DoubleState
) -> None:
    req = request(
        sampling=SamplingParams(
            temperature=0.7,
            top_p=0.9,
            top_k=40,
            min_p=0.05,
            seed=1234,
            repetition_penalty=1.1,
            presence_penalty=0.5,
            frequency_penalty=0.25,
        ),
        stopping=StoppingParams(max_tokens=6, min_tokens=2, stop_token_ids=(TokenId(7), TokenId(9))),
        logprobs=True,
        top_logprobs=3,
    )
    await read_all(engine, req)
    assert trt.llm.submitted[-1].given == {
        "max_tokens": 6,
        "min_tokens": 2,
        "stop_token_ids": [7, 9, 0],  # ours, then the model's other EOS ids (end_id is 2)
        "end_id": 2,
        "ignore_eos": False,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "seed": 1234,
        "repetition_penalty": 1.1,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "prompt_ignore_length": len(PROMPT),  # presence/frequency count generated tokens only
        "logprobs": 3,
        "detokenize": False,
        "return_perf_metrics": True,
    }


async def test_greedy_defaults_and_explicit_max_tokens(engine: TrtLlmEngine, trt: DoubleState) -> None:
    await read_all(
        engine, request(sampling=SamplingParams(temperature=0.0, top_p=0.5, top_k=3, seed=1), max_tokens=5)
    )
    greedy = trt.llm.submitted[-1].given
    assert greedy["temperature"] == 0.0 and not {"top_p", "top_k", "seed", "min_p"} & set(greedy)
    assert greedy["max_tokens"] == 5 and greedy["detokenize"] is False and greedy["ignore_eos"] is True
    assert "stop_token_ids" not in greedy  # ignore_eos: the other EOS ids are not sent either

    await read_all(engine, request("r2", sampling=SamplingParams(), max_tokens=40))
    default = trt.llm.submitted[-1].given
    assert default["temperature"] == 1.0  # explicit: TensorRT-LLM alone would decode greedily
    assert default["max_tokens"] == 40 and "logprobs" not in default

    await read_all(engine, request("r3", logprobs=True))
    assert trt.llm.submitted[-1].given["logprobs"] == 1


# --- outputs ---------------------------------------------------------------------------------------


async def test_each_eagle3_step_arrives_as_one_output(engine: TrtLlmEngine, trt: DoubleState) -> None:
    outputs = await read_all(engine, request(max_tokens=40))
    expected_sizes = [tokens_per_step(PROMPT, step, MAX_DRAFT_LEN) for step in range(1, len(outputs) + 1)]
    sizes = [len(o.token_ids) for o in outputs]
    assert sizes[:-1] == expected_sizes[:-1] and sizes[-1] <= expected_sizes[-1]
    assert sizes[0] == 1 and max(sizes) > 1  # the prompt's iteration yields one token, later ones more
    assert [t for o in outputs for t in o.token_ids] == double_tokens(PROMPT, 40)
    final = outputs[-1]
    assert final.finish_reason is FinishReason.LENGTH and all(o.finish_reason is None for o in outputs[:-1])
    assert final.stats is not None and final.stats.queued_s >= 0.0
    # The double leaves request_perf_metrics.speculative_decoding at zero, as 1.2.1 does: these come
    # from the stream, and match what the executor really did.
    truth = trt.llm.results[-1].truth
    assert truth is not None and truth.accepted_draft_tokens > 0
    assert final.stats.decode_steps == truth.iterations == len(outputs)
    assert final.stats.draft_tokens == truth.draft_tokens == MAX_DRAFT_LEN * (len(outputs) - 1)
    assert final.stats.accepted_draft_tokens == truth.accepted_draft_tokens == 40 - len(outputs)


async def test_end_of_sequence_is_not_an_output_token(engine: TrtLlmEngine, trt: DoubleState) -> None:
    trt.controls.end_after_tokens = 5
    stopping = StoppingParams(max_tokens=30)
    outputs = await read_all(engine, request(stopping=stopping))
    assert [t for o in outputs for t in o.token_ids] == double_tokens(PROMPT, 5)
    assert outputs[-1].finish_reason is FinishReason.END_OF_SEQUENCE and outputs[-1].stop_token_id is None

    outputs = await read_all(engine, request("r2", stopping=StoppingParams(max_tokens=30, min_tokens=8)))
    assert len([t for o in outputs for t in o.token_ids]) == 8  # min_tokens holds the end token back


async def test_stop_token_ends_the_request_and_is_reported_apart(engine: TrtLlmEngine) -> None:
    script = double_tokens(PROMPT, 30)
    stop = TokenId(script[6])
    outputs = await read_all(engine, request(stopping=StoppingParams(max_tokens=30, stop_token_ids=(stop,))))
    assert [t for o in outputs for t in o.token_ids] == script[:6]
    assert outputs[-1].finish_reason is FinishReason.STOP_TOKEN and outputs[-1].stop_token_id == stop


async def test_stop_token_still_works_where_ignore_eos_drops_stop_words(
    engine: TrtLlmEngine, trt: DoubleState
) -> None:
    trt.controls.ignore_eos_drops_stop_words = True
    script = double_tokens(PROMPT, 300)
    stop = TokenId(script[10])
    stopping = StoppingParams(max_tokens=300, stop_token_ids=(stop,), ignore_eos=True)
    outputs = await read_all(engine, request(stopping=stopping))
    assert [t for o in outputs for t in o.token_ids] == script[:10]
    assert outputs[-1].finish_reason is FinishReason.STOP_TOKEN and outputs[-1].stop_token_id == stop
    assert trt.llm.aborted_ids == [trt.llm.results[-1].request_id]  # TensorRT-LLM would have gone on


async def test_logprobs_follow_the_tokens(engine: TrtLlmEngine) -> None:
    outputs = await read_all(engine, request(max_tokens=9, logprobs=True, top_logprobs=2))
    for output in outputs:
        assert [lp.token_id for lp in output.logprobs] == list(output.token_ids)
        for lp in output.logprobs:
            assert lp.logprob == -0.25
            assert [(c.token_id, c.logprob) for c in lp.top] == [
                (lp.token_id, -0.25),
                (lp.token_id + 1, -2.0),
            ]


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


# --- through the gRPC API -------------------------------------------------------------------------


def serve_engine_in_thread(config: ServeConfig, engine: TrtLlmEngine) -> tuple[LiveServer, threading.Thread]:
    """tests.conftest.serve_in_thread, with the engine passed in rather than built from the config."""
    started: concurrent.futures.Future[LiveServer] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()

    async def boot() -> None:
        try:
            server = TokenwireServer(config, engine)
            port = await server.start()
            await server.wait_ready()
            started.set_result(LiveServer(f"127.0.0.1:{port}", server, loop))
        except BaseException as error:
            started.set_exception(error)
            raise

    def run() -> None:
        asyncio.set_event_loop(loop)
        booting = loop.create_task(boot())
        loop.run_forever()
        del booting
        loop.close()

    thread = threading.Thread(target=run, name="tokenwire-trtllm-test-server", daemon=True)
    thread.start()
    return started.result(timeout=120), thread


@pytest.fixture
def trtllm_server(trt: DoubleState, model_dir: Path) -> Iterator[LiveServer]:
    engine = TrtLlmEngine(make_settings(model_dir), max_batch_size=4)
    live, thread = serve_engine_in_thread(ServeConfig(port=0, default_max_tokens=64), engine)
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


# --- releases: settings for one release never start on another ------------------------------------


async def test_settings_for_another_release_refuse_to_start(model_dir: Path) -> None:
    with installed("1.2.1"):
        engine = TrtLlmEngine(make_settings(model_dir, release="1.3"), max_batch_size=4)
        with pytest.raises(
            TrtLlmConfigError, match=r"checked against TensorRT-LLM 1\.3\.0rc27.*1\.2\.1 is imported"
        ):
            await engine.start()


@pytest.mark.parametrize("version", ["1.2.1", "1.3.0rc27"])
def test_each_preset_builds_the_real_shaped_classes_of_its_release(version: str) -> None:
    with installed(version) as state:
        llmapi = importlib.import_module("tensorrt_llm.llmapi")
        for name in PRESETS:
            settings = _preset_settings(name, installed_version() or "")
            DoubleLLM(**llm_kwargs(settings.llm_args, llmapi))
        assert len(state.llms) == len(PRESETS)
        for llm in state.llms:
            llm.shutdown()


def test_a_preset_for_one_release_is_refused_by_the_next() -> None:
    """The 1.3 classes reject 1.2.1's eagle3_one_model, as the strict pydantic models do."""
    with installed("1.3.0rc27"):
        llmapi = importlib.import_module("tensorrt_llm.llmapi")
        old = _preset_settings("maverick-fp8-eagle3-latency", "1.2.1")
        with pytest.raises(TrtLlmConfigError, match="eagle3_one_model"):
            llm_kwargs(old.llm_args, llmapi)


def _preset_settings(name: str, version: str) -> TrtLlmSettings:
    return load_settings(
        preset=name,
        config_file=None,
        overrides=(),
        model=None,
        draft_model=None,
        release=release_named(version),
    )


# --- speculative stats come from the stream --------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 2, 3])
@pytest.mark.parametrize("ending", ["length", "end_of_sequence", "stop_token"])
async def test_speculative_stats_are_counted_from_the_stream(
    trt: DoubleState, model_dir: Path, interval: int, ending: str
) -> None:
    """request_perf_metrics' draft counters stay zero here (as on 1.2.1): the adapter counts them."""
    engine = TrtLlmEngine(make_settings(model_dir, stream_interval=interval), max_batch_size=4)
    await engine.start()
    try:
        stop_ids: tuple[TokenId, ...] = ()
        if ending == "end_of_sequence":
            trt.controls.end_after_tokens = 17
        elif ending == "stop_token":
            stop_ids = (TokenId(double_tokens(PROMPT, 40)[21]),)
        stopping = StoppingParams(
            max_tokens=40, stop_token_ids=stop_ids, ignore_eos=ending != "end_of_sequence"
        )
        outputs = await read_all(engine, request(stopping=stopping))
    finally:
        await engine.shutdown()
    final = outputs[-1]
    expected = {
        "length": FinishReason.LENGTH,
        "end_of_sequence": FinishReason.END_OF_SEQUENCE,
        "stop_token": FinishReason.STOP_TOKEN,
    }[ending]
    assert final.finish_reason is expected and final.stats is not None
    truth = trt.llm.results[-1].truth
    assert truth is not None and truth.accepted_draft_tokens > 0
    assert (final.stats.decode_steps, final.stats.draft_tokens, final.stats.accepted_draft_tokens) == (
        truth.iterations,
        truth.draft_tokens,
        truth.accepted_draft_tokens,
    )
    if interval > 1:
        assert len(outputs) < truth.iterations  # several iterations per response
    tokens = sum(len(o.token_ids) for o in outputs)
    ended_by_token = ending != "length"
    assert tokens == final.stats.accepted_draft_tokens + final.stats.decode_steps - ended_by_token


async def test_without_speculation_there_are_no_draft_stats(trt: DoubleState, model_dir: Path) -> None:
    engine = TrtLlmEngine(make_settings(model_dir, speculative_config=None), max_batch_size=4)
    await engine.start()
    try:
        outputs = await read_all(engine, request(max_tokens=9))
    finally:
        await engine.shutdown()
    stats = outputs[-1].stats
    assert stats is not None and (stats.decode_steps, stats.draft_tokens, stats.accepted_draft_tokens) == (
        9,
        0,
        0,
    )


# --- honest parameters: what the release would drop is refused, never sent ------------------------


@contextlib.contextmanager
def serving(model_dir: Path, version: str, **overrides: object) -> Iterator[tuple[LiveServer, DoubleState]]:
    """A gRPC server on the double playing ``version``, with make_settings(**overrides)."""
    line = "1.3" if version.startswith("1.3") else "1.2.1"
    with installed(version) as state:
        engine = TrtLlmEngine(make_settings(model_dir, release=line, **overrides), max_batch_size=4)
        live, thread = serve_engine_in_thread(ServeConfig(port=0, default_max_tokens=8), engine)
        try:
            yield live, state
        finally:
            stop_live_server(live, thread)


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
