"""Structured output and logit bias on the TensorRT-LLM engine, against the TensorRT-LLM test double
(tests/trtllm_double.py: TensorRT-LLM itself cannot be installed here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engines.contract import (
    InvalidStructuredOutput,
    SamplingParams,
    StructuredOutput,
    StructuredOutputKind,
    TokenId,
)
from engines.trtllm.engine import TrtLlmEngine
from tests.trtllm_double import DoubleGuidedDecodingParams, DoubleSamplingParams, DoubleState
from tests.trtllm_requests import make_settings, read_all, request

pytest_plugins = ["tests.trtllm_fixtures"]

SCHEMA = json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})


async def _engine(model_dir: Path, backend: str | None) -> TrtLlmEngine:
    overrides = {"guided_decoding_backend": backend} if backend is not None else {}
    engine = TrtLlmEngine(make_settings(model_dir, **overrides), max_batch_size=4)
    await engine.start()
    return engine


@pytest.fixture
async def xgrammar(trt: DoubleState, model_dir: Path) -> AsyncIterator[TrtLlmEngine]:
    engine = await _engine(model_dir, "xgrammar")
    yield engine
    await engine.shutdown()


@pytest.fixture
async def llguidance(trt: DoubleState, model_dir: Path) -> AsyncIterator[TrtLlmEngine]:
    engine = await _engine(model_dir, "llguidance")
    yield engine
    await engine.shutdown()


def _guided(trt: DoubleState) -> dict[str, object]:
    params = trt.llm.submitted[-1]
    assert isinstance(params, DoubleSamplingParams)
    guide = params.given["guided_decoding"]
    assert isinstance(guide, DoubleGuidedDecodingParams)
    return guide.given


async def test_without_a_backend_no_kind_is_advertised(trt: DoubleState, model_dir: Path) -> None:
    engine = await _engine(model_dir, None)
    try:
        assert engine.info.structured_output_kinds == ()
        with pytest.raises(InvalidStructuredOutput, match="guided_decoding_backend"):
            engine.compile_structured_output(StructuredOutput(StructuredOutputKind.JSON_OBJECT))
    finally:
        await engine.shutdown()


async def test_xgrammar_kinds_map_to_guided_decoding_params(xgrammar: TrtLlmEngine, trt: DoubleState) -> None:
    kinds = set(xgrammar.info.structured_output_kinds)
    assert StructuredOutputKind.GRAMMAR_LARK not in kinds  # xgrammar reads EBNF, not Lark
    cases = [
        (StructuredOutput(StructuredOutputKind.JSON_SCHEMA, SCHEMA), {"json": SCHEMA}),
        (StructuredOutput(StructuredOutputKind.JSON_OBJECT), {"json_object": True}),
        (StructuredOutput(StructuredOutputKind.REGEX, r"\d+"), {"regex": r"\d+"}),
        (
            StructuredOutput(StructuredOutputKind.GRAMMAR_GBNF, 'root ::= "a" [0-9]'),
            {"grammar": 'root ::= "a" [0-9]'},
        ),
        (
            StructuredOutput(StructuredOutputKind.CHOICE, choices=('say "hi"', "bye")),
            {"grammar": 'root ::= "say \\"hi\\"" | "bye"'},
        ),
    ]
    for spec, expected in cases:
        assert spec.kind in kinds
        xgrammar.compile_structured_output(spec)
        await read_all(xgrammar, replace(request(), structured_output=spec))
        assert _guided(trt) == expected


async def test_llguidance_takes_lark_and_gbnf_converted_to_lark(
    llguidance: TrtLlmEngine, trt: DoubleState
) -> None:
    assert StructuredOutputKind.GRAMMAR_LARK in llguidance.info.structured_output_kinds
    lark = StructuredOutput(StructuredOutputKind.GRAMMAR_LARK, 'start: "x" | "y"')
    await read_all(llguidance, replace(request(), structured_output=lark))
    assert _guided(trt) == {"grammar": 'start: "x" | "y"'}
    gbnf = StructuredOutput(StructuredOutputKind.GRAMMAR_GBNF, 'root ::= "a" | "b"')
    await read_all(llguidance, replace(request(), structured_output=gbnf))
    grammar = _guided(trt)["grammar"]
    assert isinstance(grammar, str) and "start" in grammar and "::=" not in grammar
    choice = StructuredOutput(StructuredOutputKind.CHOICE, choices=("a", "b"))
    await read_all(llguidance, replace(request(), structured_output=choice))
    assert _guided(trt) == {"grammar": 'start: "a" | "b"'}


async def test_a_format_that_does_not_compile_is_refused_before_submission(
    xgrammar: TrtLlmEngine, trt: DoubleState
) -> None:
    with pytest.raises(InvalidStructuredOutput, match="unclosed group"):
        xgrammar.compile_structured_output(StructuredOutput(StructuredOutputKind.REGEX, "(a"))
    with pytest.raises(InvalidStructuredOutput, match="not followed by the xgrammar backend"):
        xgrammar.compile_structured_output(StructuredOutput(StructuredOutputKind.GRAMMAR_LARK, 'start: "a"'))
    assert not trt.llm.submitted


async def test_logit_bias_travels_as_embedding_bias(xgrammar: TrtLlmEngine, trt: DoubleState) -> None:
    sampling = SamplingParams(temperature=0.0, logit_bias=((TokenId(5), 2.5), (TokenId(9), -100.0)))
    await read_all(xgrammar, request(sampling=sampling))
    bias = trt.llm.submitted[-1].given["embedding_bias"]
    assert isinstance(bias, torch.Tensor)
    assert bias.shape == (xgrammar.info.vocab_size,) and bias.dtype == torch.float32
    assert bias[5] == 2.5 and bias[9] == float("-inf")
    assert int((bias != 0).sum()) == 2


async def test_logit_bias_is_refused_under_one_model_eagle3_on_1_2(trt: DoubleState, model_dir: Path) -> None:
    """1.2.1 samples one-model EAGLE-3 with temperature and top-k only: a bias could be dropped."""
    engine = TrtLlmEngine(make_settings(model_dir), max_batch_size=4)
    await engine.start()
    try:
        refused = {item.field: item.reason for item in engine.info.unsupported_fields}
        assert "one-model EAGLE-3" in refused["sampling.logit_bias"]
    finally:
        await engine.shutdown()
    plain = TrtLlmEngine(make_settings(model_dir, speculative_config=None), max_batch_size=4)
    await plain.start()
    try:
        assert "sampling.logit_bias" not in {item.field for item in plain.info.unsupported_fields}
    finally:
        await plain.shutdown()
