"""The TensorRT-LLM adapter's mapping both ways, against its test double (tests/trtllm_double.py:
the real ``tensorrt_llm`` needs an NVIDIA GPU and cannot be installed here).

Each request field to its ``SamplingParams`` field; TensorRT-LLM's cumulative outputs back
to the engine contract's: tokens per EAGLE-3 step, the end and stop tokens, logprobs, and the
speculative stats counted from the stream. The tokenizer is real: SmolLM2's, saved as a
Hugging Face tokenizer directory, so the double's "model" produces ids of a real vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.contract import FinishReason, SamplingParams, StoppingParams, TokenId
from engines.trtllm.engine import TrtLlmEngine
from tests.trtllm_double import DoubleState, double_tokens, tokens_per_step
from tests.trtllm_requests import MAX_DRAFT_LEN, PROMPT, make_settings, read_all, request

pytest_plugins = ["tests.trtllm_fixtures"]


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
