"""Structured output (JSON Schema, JSON object, regex, Lark and GBNF grammars, choice) and logit
bias through the real gRPC API, against the real embedded model."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import grpc
import pytest
from grpc import aio
from tokenwire.v1 import generation_pb2, model_pb2

from tests.streams import Generation, bad_request, collect
from tests.stubs import GenerationStub, ModelStub

SAMPLES = 50
"""Seeded samples per format: every one must follow it."""

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "maxLength": 20},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
ORDER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1, "maximum": 9999},
        "status": {"enum": ["open", "shipped", "closed"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                },
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
        "price": {"type": "number", "minimum": 0, "exclusiveMaximum": 100},
    },
    "required": ["id", "status", "items"],
    "additionalProperties": False,
}
TAGS = {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 4}


def _person_ok(value: object) -> bool:
    if (
        not isinstance(value, dict)
        or set(value) - {"name", "age", "email"}
        or not {"name", "age"} <= set(value)
    ):
        return False
    name, age = value["name"], value["age"]
    email_ok = "email" not in value or (isinstance(value["email"], str) and len(value["email"]) <= 20)
    return (
        isinstance(name, str)
        and 1 <= len(name) <= 12
        and isinstance(age, int)
        and not isinstance(age, bool)
        and 0 <= age <= 120
        and email_ok
    )


def _order_ok(value: object) -> bool:
    if not isinstance(value, dict) or not {"id", "status", "items"} <= set(value):
        return False
    if set(value) - {"id", "status", "items", "price"}:
        return False
    items = value["items"]
    items_ok = (
        isinstance(items, list)
        and 1 <= len(items) <= 3
        and all(
            isinstance(item, dict)
            and set(item) == {"sku", "qty"}
            and isinstance(item["sku"], str)
            and re.fullmatch(r"[A-Z]{3}-[0-9]{2}", item["sku"]) is not None
            and isinstance(item["qty"], int)
            and 1 <= item["qty"] <= 9
            for item in items
        )
    )
    price = value.get("price", 0)
    return (
        isinstance(value["id"], int)
        and 1 <= value["id"] <= 9999
        and value["status"] in ("open", "shipped", "closed")
        and items_ok
        and isinstance(price, int | float)
        and 0 <= price < 100
    )


def _tags_ok(value: object) -> bool:
    return (
        isinstance(value, list) and 1 <= len(value) <= 4 and all(v in ("red", "green", "blue") for v in value)
    )


def _json_checker(check: Callable[[object], bool]) -> Callable[[str], bool]:
    def checked(text: str) -> bool:
        try:
            return check(json.loads(text))
        except ValueError:
            return False

    return checked


def _chat(content: str) -> generation_pb2.Chat:
    return generation_pb2.Chat(messages=[generation_pb2.ChatMessage(role="user", content=content)])


LARK_SUM = """
start: expr
expr: NUMBER " + " NUMBER " = " NUMBER
NUMBER: /[1-9][0-9]?/
"""
GBNF_DATE = (
    'root ::= year "-" month "-" day\n'
    'year ::= "20" [0-9] [0-9]\n'
    'month ::= "0" [1-9] | "1" [0-2]\n'
    'day ::= "0" [1-9] | [12] [0-9] | "3" [01]\n'
)

FORMATS: list[tuple[str, str, generation_pb2.StructuredOutput, Callable[[str], bool]]] = [
    (
        "person schema",
        "Describe a person as JSON.",
        generation_pb2.StructuredOutput(json_schema=json.dumps(PERSON)),
        _json_checker(_person_ok),
    ),
    (
        "order schema",
        "Write a shop order as JSON.",
        generation_pb2.StructuredOutput(json_schema=json.dumps(ORDER)),
        _json_checker(_order_ok),
    ),
    (
        "tags schema",
        "List some colours as a JSON array.",
        generation_pb2.StructuredOutput(json_schema=json.dumps(TAGS)),
        _json_checker(_tags_ok),
    ),
    (
        "phone regex",
        "Give me a phone number.",
        generation_pb2.StructuredOutput(regex=r"\(\d{3}\) \d{3}-\d{4}"),
        lambda text: re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", text) is not None,
    ),
    (
        "word regex",
        "Name an animal.",
        generation_pb2.StructuredOutput(regex=r"[a-z]{3,10}"),
        lambda text: re.fullmatch(r"[a-z]{3,10}", text) is not None,
    ),
    (
        "lark sum",
        "Add two numbers.",
        generation_pb2.StructuredOutput(
            grammar=generation_pb2.Grammar(syntax=generation_pb2.Grammar.SYNTAX_LARK, text=LARK_SUM)
        ),
        lambda text: re.fullmatch(r"[1-9][0-9]? \+ [1-9][0-9]? = [1-9][0-9]?", text) is not None,
    ),
    (
        "gbnf date",
        "When did it happen?",
        generation_pb2.StructuredOutput(
            grammar=generation_pb2.Grammar(syntax=generation_pb2.Grammar.SYNTAX_GBNF, text=GBNF_DATE)
        ),
        lambda text: re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", text) is not None,
    ),
]


async def _generate(generation: GenerationStub, request: generation_pb2.GenerateRequest) -> Generation:
    return await collect(generation.Generate(request))


@pytest.mark.parametrize(("name", "prompt", "spec", "valid"), FORMATS, ids=[f[0] for f in FORMATS])
async def test_every_seeded_sample_follows_the_format(
    generation: GenerationStub,
    name: str,
    prompt: str,
    spec: generation_pb2.StructuredOutput,
    valid: Callable[[str], bool],
) -> None:
    requests = [
        generation_pb2.GenerateRequest(
            chat=_chat(prompt),
            structured_output=spec,
            sampling=generation_pb2.SamplingParams(temperature=1.0, seed=seed),
            stopping=generation_pb2.StoppingCriteria(max_tokens=160),
        )
        for seed in range(SAMPLES)
    ]
    # A task group cancels the other calls when one fails, so a failure cannot leave 49 generations
    # queued in the shared server for the next tests.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_generate(generation, r)) for r in requests]
    results = [task.result() for task in tasks]
    bad = [r.text for r in results if not valid(r.text)]
    assert not bad, f"{len(bad)} of {SAMPLES} outputs do not follow {name}: {bad[:3]}"
    # The format ended them (end-of-sequence once the format was complete, or the format itself).
    reasons = {r.reason for r in results}
    assert reasons <= {
        generation_pb2.FINISH_REASON_END_OF_SEQUENCE,
        generation_pb2.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE,
    }, reasons
    assert len({r.text for r in results}) > 1, "seeded samples should differ"


SPECULATED_FORMATS = [FORMATS[0], FORMATS[1], FORMATS[5]]


@pytest.mark.parametrize(
    ("name", "prompt", "spec", "valid"), SPECULATED_FORMATS, ids=[f[0] for f in SPECULATED_FORMATS]
)
async def test_greedy_output_is_identical_with_and_without_speculation(
    generation: GenerationStub,
    model: ModelStub,
    name: str,
    prompt: str,
    spec: generation_pb2.StructuredOutput,
    valid: Callable[[str], bool],
) -> None:
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    methods = generation_pb2.SpeculativeOptions.SpeculativeMethod
    options = [methods.SPECULATIVE_METHOD_OFF, methods.SPECULATIVE_METHOD_NGRAM]
    if "eagle3" in info.speculative.available_methods:
        options.append(methods.SPECULATIVE_METHOD_EAGLE3)
    results = []
    for method in options:
        request = generation_pb2.GenerateRequest(
            chat=_chat(prompt),
            structured_output=spec,
            sampling=generation_pb2.SamplingParams(temperature=0.0),
            stopping=generation_pb2.StoppingCriteria(max_tokens=160),
            speculative=generation_pb2.SpeculativeOptions(method=method, draft_length=6),
        )
        results.append(await _generate(generation, request))
    off = results[0]
    assert valid(off.text), off.text
    for method, result in zip(options[1:], results[1:], strict=True):
        assert result.token_ids == off.token_ids, methods.Name(method)
        assert result.reason == off.reason
    # Speculation did run (and its drafts were judged under the grammar).
    drafted = [r.finished.speculative.draft_tokens for r in results[1:] if r.finished is not None]
    assert any(d > 0 for d in drafted), drafted


async def test_choice_output_is_one_of_the_options_and_ends_the_generation(
    generation: GenerationStub,
) -> None:
    options = ["positive", "negative", "neutral"]
    spec = generation_pb2.StructuredOutput(choice=generation_pb2.Choice(options=options))
    for seed in range(5):
        result = await _generate(
            generation,
            generation_pb2.GenerateRequest(
                chat=_chat("I loved this film! Sentiment?"),
                structured_output=spec,
                sampling=generation_pb2.SamplingParams(seed=seed),
                stopping=generation_pb2.StoppingCriteria(ignore_eos=True, max_tokens=50),
            ),
        )
        assert result.text in options
        # With ignore_eos nothing but the format could end it before max_tokens.
        assert result.reason == generation_pb2.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE


async def test_json_object_output_is_a_json_object(generation: GenerationStub) -> None:
    for seed in range(3):
        result = await _generate(
            generation,
            generation_pb2.GenerateRequest(
                chat=_chat("Give me a JSON object describing a cat."),
                structured_output=generation_pb2.StructuredOutput(
                    json_object=generation_pb2.JsonObjectFormat()
                ),
                sampling=generation_pb2.SamplingParams(seed=seed, temperature=0.7),
                stopping=generation_pb2.StoppingCriteria(max_tokens=120),
            ),
        )
        if result.reason == generation_pb2.FINISH_REASON_LENGTH:
            assert result.text.startswith("{")  # cut short, still on its way to an object
            continue
        assert isinstance(json.loads(result.text), dict), result.text


async def test_structured_output_with_stop_strings_and_logprobs(generation: GenerationStub) -> None:
    result = await _generate(
        generation,
        generation_pb2.GenerateRequest(
            chat=_chat("Count."),
            structured_output=generation_pb2.StructuredOutput(regex=r"1, 2, 3, 4, 5"),
            stopping=generation_pb2.StoppingCriteria(stop=[", 4"]),
            output=generation_pb2.OutputOptions(logprobs=True),
        ),
    )
    assert result.text == "1, 2, 3"
    assert result.reason == generation_pb2.FINISH_REASON_STOP_STRING


async def test_logit_bias_of_minus_100_bans_a_token_and_plus_100_forces_it(
    generation: GenerationStub, model: ModelStub
) -> None:
    prompt = _chat("What is the capital of France?")
    greedy = generation_pb2.SamplingParams(temperature=0.0)
    free = await _generate(
        generation,
        generation_pb2.GenerateRequest(
            chat=prompt, sampling=greedy, stopping=generation_pb2.StoppingCriteria(max_tokens=12)
        ),
    )
    first = free.token_ids[0]
    banned = await _generate(
        generation,
        generation_pb2.GenerateRequest(
            chat=prompt,
            sampling=generation_pb2.SamplingParams(temperature=0.0, logit_bias={first: -100.0}),
            stopping=generation_pb2.StoppingCriteria(max_tokens=12),
        ),
    )
    assert first not in banned.token_ids
    paris = (await model.Tokenize(model_pb2.TokenizeRequest(text=" Paris"))).token_ids[-1]
    for seed in range(10):
        forced = await _generate(
            generation,
            generation_pb2.GenerateRequest(
                chat=prompt,
                sampling=generation_pb2.SamplingParams(temperature=1.0, seed=seed, logit_bias={paris: 100.0}),
                stopping=generation_pb2.StoppingCriteria(max_tokens=5, ignore_eos=True),
            ),
        )
        assert forced.token_ids == [paris] * 5
        sampled_banned = await _generate(
            generation,
            generation_pb2.GenerateRequest(
                chat=prompt,
                sampling=generation_pb2.SamplingParams(
                    temperature=1.5, seed=seed, logit_bias={first: -100.0}
                ),
                stopping=generation_pb2.StoppingCriteria(max_tokens=12),
            ),
        )
        assert first not in sampled_banned.token_ids


async def test_model_info_lists_every_kind_the_native_engine_follows(model: ModelStub) -> None:
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    assert set(info.structured_output_kinds) == {
        model_pb2.STRUCTURED_OUTPUT_KIND_JSON_SCHEMA,
        model_pb2.STRUCTURED_OUTPUT_KIND_JSON_OBJECT,
        model_pb2.STRUCTURED_OUTPUT_KIND_REGEX,
        model_pb2.STRUCTURED_OUTPUT_KIND_GRAMMAR_LARK,
        model_pb2.STRUCTURED_OUTPUT_KIND_GRAMMAR_GBNF,
        model_pb2.STRUCTURED_OUTPUT_KIND_CHOICE,
    }
    assert "sampling.logit_bias" in info.honored_fields


def _lark(text: str) -> generation_pb2.StructuredOutput:
    return generation_pb2.StructuredOutput(
        grammar=generation_pb2.Grammar(syntax=generation_pb2.Grammar.SYNTAX_LARK, text=text)
    )


BAD_FORMATS = [
    (
        generation_pb2.StructuredOutput(json_schema="{not json"),
        "structured_output.json_schema",
        "not valid JSON",
    ),
    (generation_pb2.StructuredOutput(json_schema="[1, 2]"), "structured_output.json_schema", "JSON object"),
    (
        generation_pb2.StructuredOutput(
            json_schema=json.dumps({"type": "integer", "minimum": 5, "maximum": 2})
        ),
        "structured_output.json_schema",
        "minimum",
    ),
    (
        generation_pb2.StructuredOutput(json_schema=json.dumps({"type": "array", "uniqueItems": True})),
        "structured_output.json_schema",
        "uniqueItems",
    ),
    (generation_pb2.StructuredOutput(regex="(ab"), "structured_output.regex", "unclosed group"),
    (generation_pb2.StructuredOutput(regex=""), "structured_output.regex", "must not be empty"),
    (_lark("start: undefined_rule"), "structured_output.grammar.text", "undefined_rule"),
    (
        generation_pb2.StructuredOutput(
            grammar=generation_pb2.Grammar(syntax=generation_pb2.Grammar.SYNTAX_GBNF, text="root ::= (")
        ),
        "structured_output.grammar.text",
        "GBNF",
    ),
    (
        generation_pb2.StructuredOutput(grammar=generation_pb2.Grammar(text='start: "a"')),
        "structured_output.grammar.syntax",
        "is required",
    ),
    (
        generation_pb2.StructuredOutput(choice=generation_pb2.Choice()),
        "structured_output.choice.options",
        "1 to 256",
    ),
    (
        generation_pb2.StructuredOutput(choice=generation_pb2.Choice(options=["a", ""])),
        "structured_output.choice.options[1]",
        "must not be empty",
    ),
    (generation_pb2.StructuredOutput(), "structured_output", "set one of"),
    (
        generation_pb2.StructuredOutput(json_schema=" " * (64 * 1024 + 1)),
        "structured_output.json_schema",
        "at most 65536",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "reason"), BAD_FORMATS, ids=[b[1] + ":" + b[2] for b in BAD_FORMATS]
)
async def test_a_bad_format_is_invalid_argument_naming_the_field_and_the_reason(
    generation: GenerationStub, spec: generation_pb2.StructuredOutput, field: str, reason: str
) -> None:
    request = generation_pb2.GenerateRequest(text="Hello", structured_output=spec)
    with pytest.raises(aio.AioRpcError) as caught:
        await _generate(generation, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(caught.value)
    assert field in violations, violations
    assert reason in violations[field]
    assert len(violations[field]) <= 256


async def test_bad_logit_bias_and_n_are_invalid_argument(generation: GenerationStub) -> None:
    request = generation_pb2.GenerateRequest(
        text="Hello",
        sampling=generation_pb2.SamplingParams(
            temperature=0.0, logit_bias={5: 150.0, 10**6: 1.0, 7: float("nan")}
        ),
        n=3,
    )
    with pytest.raises(aio.AioRpcError) as caught:
        await _generate(generation, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(caught.value)
    assert "[-100, 100]; got 150" in violations["sampling.logit_bias[5]"]
    assert "[-100, 100]" in violations["sampling.logit_bias[7]"]
    assert "vocabulary size" in violations[f"sampling.logit_bias[{10**6}]"]
    assert "n" in violations
    too_many = generation_pb2.GenerateRequest(
        text="Hello", sampling=generation_pb2.SamplingParams(logit_bias={i: 1.0 for i in range(301)})
    )
    with pytest.raises(aio.AioRpcError) as caught:
        await _generate(generation, too_many)
    assert "at most 300 entries" in bad_request(caught.value)["sampling.logit_bias"]


async def test_a_bad_format_in_a_session_fails_only_its_generation(generation: GenerationStub) -> None:
    good = generation_pb2.GenerateRequest(
        request_id="good",
        chat=_chat("Yes or no?"),
        structured_output=generation_pb2.StructuredOutput(
            choice=generation_pb2.Choice(options=["yes", "no"])
        ),
    )
    bad = generation_pb2.GenerateRequest(
        request_id="bad", text="Hi", structured_output=generation_pb2.StructuredOutput(regex="[")
    )
    requests = [generation_pb2.SessionRequest(start=bad), generation_pb2.SessionRequest(start=good)]
    events: dict[str, list[generation_pb2.SessionResponse]] = {"good": [], "bad": []}
    async for response in generation.Session(iter(requests)):
        events[response.request_id].append(response)
    [error] = events["bad"]
    assert error.WhichOneof("event") == "error"
    assert error.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    finished = events["good"][-1]
    assert finished.WhichOneof("event") == "finished"
    text = "".join(e.delta.text for e in events["good"] if e.WhichOneof("event") == "delta")
    assert text in ("yes", "no")
