"""Structured output on TensorRT-LLM: our formats as ``GuidedDecodingParams`` keyword arguments.

TensorRT-LLM compiles guides itself, with the backend its ``guided_decoding_backend`` names
(unset: no guided decoding, and we advertise no kinds). Its two backends read ``grammar``
differently (tensorrt_llm/_torch/pyexecutor/grammar_matcher.py, 1.x): xgrammar takes EBNF in
GBNF's notation, llguidance takes Lark. So a GBNF grammar is passed as is to xgrammar and
converted to Lark for llguidance; a Lark grammar only goes to llguidance; a choice becomes a
grammar in the backend's notation. Nothing TensorRT-LLM would not follow is advertised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from llguidance.gbnf_to_lark import any_to_lark

from engines.contract import InvalidStructuredOutput, StructuredOutput, StructuredOutputKind

_COMMON = (
    StructuredOutputKind.JSON_SCHEMA,
    StructuredOutputKind.JSON_OBJECT,
    StructuredOutputKind.REGEX,
    StructuredOutputKind.CHOICE,
)
KINDS: Mapping[str, tuple[StructuredOutputKind, ...]] = {
    "xgrammar": (*_COMMON, StructuredOutputKind.GRAMMAR_GBNF),
    "llguidance": (*_COMMON, StructuredOutputKind.GRAMMAR_GBNF, StructuredOutputKind.GRAMMAR_LARK),
}


def backend_of(llm_args: Mapping[str, object]) -> str | None:
    """The configured guided-decoding backend, when there is one."""
    backend = llm_args.get("guided_decoding_backend")
    return backend if isinstance(backend, str) and backend in KINDS else None


def kinds_for(llm_args: Mapping[str, object]) -> tuple[StructuredOutputKind, ...]:
    backend = backend_of(llm_args)
    return KINDS[backend] if backend is not None else ()


def _literal(value: str) -> str:
    # JSON string escapes are valid in both GBNF and llguidance's Lark string literals.
    return json.dumps(value, ensure_ascii=False)


def guided_kwargs(spec: StructuredOutput, backend: str) -> dict[str, object]:
    """Keyword arguments of ``tensorrt_llm.llmapi.GuidedDecodingParams`` for ``spec``."""
    if spec.kind not in KINDS.get(backend, ()):
        raise InvalidStructuredOutput(f"{spec.kind.value} is not followed by the {backend} backend")
    match spec.kind:
        case StructuredOutputKind.JSON_SCHEMA:
            return {"json": spec.text}
        case StructuredOutputKind.JSON_OBJECT:
            return {"json_object": True}
        case StructuredOutputKind.REGEX:
            return {"regex": spec.text}
        case StructuredOutputKind.GRAMMAR_LARK:
            return {"grammar": spec.text}
        case StructuredOutputKind.GRAMMAR_GBNF:
            return {"grammar": spec.text if backend == "xgrammar" else any_to_lark(spec.text)}
        case StructuredOutputKind.CHOICE:
            options = " | ".join(_literal(choice) for choice in spec.choices)
            return {"grammar": f"root ::= {options}" if backend == "xgrammar" else f"start: {options}"}
