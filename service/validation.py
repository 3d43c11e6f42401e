"""Wire messages in, engine-contract values out, or every field violation at once.

Limits are checked here, before anything reaches the engine, so the engine can
trust its inputs and callers learn about every bad field in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from tokenwire.v1 import generation_pb2, model_pb2

from engines.contract import (
    MAX_DRAFT_LENGTH,
    ChatMessage,
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    StructuredOutput,
    StructuredOutputKind,
    TokenId,
    Tokenizer,
    UnsupportedField,
)
from service.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument, quoted
from service.prepared import PreparedGeneration

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_REQUEST_ID_CHARS = 128
MAX_STOP_STRINGS = 16
MAX_STOP_STRING_CHARS = 256
MAX_STOP_TOKEN_IDS = 64
MAX_TOP_LOGPROBS = 20
MAX_CHAT_MESSAGES = 4096
"""More messages than this never fit a context window we serve; refused before rendering."""
MAX_DETOKENIZE_IDS = 65536
MAX_LOGIT_BIAS_ENTRIES = 300
MAX_LOGIT_BIAS = 100.0
MAX_SCHEMA_CHARS = 64 * 1024
"""JSON schemas and grammars; regexes get ``MAX_REGEX_CHARS``."""
MAX_REGEX_CHARS = 4 * 1024
MAX_CHOICES = 256
MAX_CHOICE_CHARS = 1024
DEFAULT_MAX_SAMPLES = 16

KIND_NUMBERS = {
    StructuredOutputKind.JSON_SCHEMA: model_pb2.STRUCTURED_OUTPUT_KIND_JSON_SCHEMA,
    StructuredOutputKind.JSON_OBJECT: model_pb2.STRUCTURED_OUTPUT_KIND_JSON_OBJECT,
    StructuredOutputKind.REGEX: model_pb2.STRUCTURED_OUTPUT_KIND_REGEX,
    StructuredOutputKind.GRAMMAR_LARK: model_pb2.STRUCTURED_OUTPUT_KIND_GRAMMAR_LARK,
    StructuredOutputKind.GRAMMAR_GBNF: model_pb2.STRUCTURED_OUTPUT_KIND_GRAMMAR_GBNF,
    StructuredOutputKind.CHOICE: model_pb2.STRUCTURED_OUTPUT_KIND_CHOICE,
}
"""GetModelInfo's numbers for the contract's kinds."""
FALLBACK_DRAFT_LENGTH = 4
"""Draft length for a request that turns speculation on when the server default is off."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the served model allows; comes from the engine and server config."""

    context_length: int
    vocab_size: int
    default_max_tokens: int
    default_speculation: SpeculationMethod = SpeculationMethod.OFF
    """The engine's default drafter, as far as the contract can name it (OFF otherwise)."""
    default_draft_length: int = 0
    speculation_methods: frozenset[SpeculationMethod] | None = None
    """Methods a request may choose; None: any."""
    unsupported: tuple[UnsupportedField, ...] = ()
    """Fields the engine would not honour: refused when a request sets them (``EngineInfo``)."""
    structured_output_kinds: frozenset[StructuredOutputKind] = frozenset()
    """The formats the engine follows (``EngineInfo``); others are refused."""
    max_samples: int = 1
    """The largest ``n`` a request may ask for."""


@dataclass(frozen=True, slots=True)
class Prompt:
    token_ids: tuple[TokenId, ...]
    rendered: str
    """For chat input: the text the template produced (empty otherwise)."""


class _Violations:
    """Field violations as they are found: the first ``MAX_VIOLATIONS`` kept, all counted."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []
        self.count = 0

    def add(self, field: str, description: str) -> None:
        self.count += 1
        if len(self.items) < MAX_VIOLATIONS:
            self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items, total=self.count)


def _check_range(
    bad: _Violations, field: str, value: float, low: float, high: float, *, low_open: bool = False
) -> None:
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        bad.add(field, f"must be in {interval}; got {value:g}")


def _chat_messages(chat: generation_pb2.Chat, field: str, bad: _Violations) -> list[ChatMessage]:
    if not chat.messages:
        bad.add(f"{field}.messages", "must contain at least one message")
    for index, message in enumerate(chat.messages):
        if message.role not in CHAT_ROLES:
            roles = ", ".join(sorted(CHAT_ROLES))
            bad.add(f"{field}.messages[{index}].role", f"must be one of {roles}; got {quoted(message.role)}")
    return [ChatMessage(m.role, m.content) for m in chat.messages]


def input_bytes(request: generation_pb2.GenerateRequest | model_pb2.TokenizeRequest) -> int:
    """A cheap measure of the work tokenizing ``request``'s input takes (its text's UTF-8 bytes)."""
    match request.WhichOneof("input"):
        case "text":
            return len(request.text.encode("utf-8", "surrogatepass"))
        case "chat" if len(request.chat.messages) <= MAX_CHAT_MESSAGES:
            return sum(
                len(m.content.encode("utf-8", "surrogatepass")) + len(m.role) for m in request.chat.messages
            )
        case "chat":
            return 0  # refused by count before any work
        case _:
            return 0


def _within_cheap_bounds(
    request: generation_pb2.GenerateRequest | model_pb2.TokenizeRequest,
    tokenizer: Tokenizer,
    limits: Limits,
    bad: _Violations,
) -> bool:
    """Refuse, before any tokenizing or rendering, input that cannot fit the context.

    A token is at most ``tokenizer.max_token_bytes`` bytes of text, so text longer
    than the context times that surely tokenizes to more tokens than the context
    holds (a chat's template only adds to its messages' text).
    """
    field = request.WhichOneof("input") or "input"
    context = limits.context_length
    if field == "chat" and len(request.chat.messages) > MAX_CHAT_MESSAGES:
        bad.add(
            "chat.messages",
            f"at most {MAX_CHAT_MESSAGES} messages; got {len(request.chat.messages)}",
        )
        return False
    if isinstance(request, generation_pb2.GenerateRequest) and field == "token_ids":
        n_ids = len(request.token_ids.ids)
        if n_ids >= context:
            bad.add(
                "token_ids",
                f"the prompt is {n_ids} tokens but the context holds {context} "
                f"(prompt plus output); send at most {context - 1} prompt tokens",
            )
            return False
    most = context * tokenizer.max_token_bytes
    size = input_bytes(request)
    if size > most:
        bad.add(
            field,
            f"the input is {size} bytes of text, more than the context of {context} tokens can hold "
            f"(at most {most} bytes: {tokenizer.max_token_bytes} per token)",
        )
        return False
    return True


def _render_chat(tokenizer: Tokenizer, messages: Sequence[ChatMessage], field: str, bad: _Violations) -> str:
    if not tokenizer.has_chat_template:
        bad.add(field, "this model has no chat template; send text or token_ids")
        return ""
    try:
        return tokenizer.render_chat(messages, add_generation_prompt=True)
    except ValueError as error:
        bad.add(field, f"the model's chat template rejected the messages: {error}")
        return ""


def _prompt_from(
    request: generation_pb2.GenerateRequest | model_pb2.TokenizeRequest,
    tokenizer: Tokenizer,
    limits: Limits,
    bad: _Violations,
) -> Prompt:
    """Tokenize the request's input (text, token ids or chat) exactly as generation does.

    Cheap size checks come first; the CPU-heavy part (rendering, tokenizing) only for input
    that may fit. Callers run this off the event loop when ``input_bytes`` is large.
    """
    if not _within_cheap_bounds(request, tokenizer, limits, bad):
        return Prompt((), "")
    match request.WhichOneof("input"):
        case "text":
            if not request.text:
                bad.add("text", "must not be empty")
                return Prompt((), "")
            return Prompt(tuple(tokenizer.encode(request.text)), "")
        case "token_ids":
            assert isinstance(request, generation_pb2.GenerateRequest)
            ids = request.token_ids.ids
            if not ids:
                bad.add("token_ids.ids", "must not be empty")
            for index, token in enumerate(ids):
                if token >= limits.vocab_size:
                    bad.add(
                        f"token_ids.ids[{index}]", f"must be below the vocabulary size {limits.vocab_size}"
                    )
                    break
            return Prompt(tuple(TokenId(t) for t in ids), "")
        case "chat":
            messages = _chat_messages(request.chat, "chat", bad)
            if bad.items:
                return Prompt((), "")
            rendered = _render_chat(tokenizer, messages, "chat", bad)
            encoded = tokenizer.encode(rendered, add_special_tokens=False) if rendered else []
            return Prompt(tuple(encoded), rendered)
        case None:
            bad.add("input", "set one of text, token_ids or chat")
            return Prompt((), "")
        case other:
            raise AssertionError(f"unhandled input {other}")


def tokenize_request(request: model_pb2.TokenizeRequest, tokenizer: Tokenizer, limits: Limits) -> Prompt:
    bad = _Violations()
    prompt = _prompt_from(request, tokenizer, limits, bad)
    bad.raise_if_any()
    return prompt


def detokenize_ids(request: model_pb2.DetokenizeRequest, limits: Limits) -> list[int]:
    bad = _Violations()
    if len(request.token_ids) > MAX_DETOKENIZE_IDS:
        bad.add("token_ids", f"at most {MAX_DETOKENIZE_IDS} ids; got {len(request.token_ids)}")
        bad.raise_if_any()
    for index, token in enumerate(request.token_ids):
        if token >= limits.vocab_size:
            bad.add(f"token_ids[{index}]", f"must be below the vocabulary size {limits.vocab_size}")
            break
    bad.raise_if_any()
    return list(request.token_ids)


def request_id_of(value: str, *, required: bool) -> str:
    """A caller's request id, validated as Generate does; raises ``InvalidArgument``."""
    bad = _Violations()
    _request_id(value, required=required, bad=bad)
    bad.raise_if_any()
    return value


def _request_id(value: str, *, required: bool, bad: _Violations) -> str:
    if not value:
        if required:
            bad.add("request_id", "is required in a Session")
        return value
    if len(value) > MAX_REQUEST_ID_CHARS:
        bad.add("request_id", f"must be at most {MAX_REQUEST_ID_CHARS} characters; got {len(value)}")
    elif not all(" " <= c <= "~" for c in value):
        bad.add("request_id", "must be printable ASCII")
    return value


def _sampling(params: generation_pb2.SamplingParams, limits: Limits, bad: _Violations) -> SamplingParams:
    if params.HasField("temperature"):
        _check_range(bad, "sampling.temperature", params.temperature, 0.0, 100.0)
    if params.HasField("top_p"):
        _check_range(bad, "sampling.top_p", params.top_p, 0.0, 1.0, low_open=True)
    if params.HasField("top_k") and not 1 <= params.top_k <= limits.vocab_size:
        bad.add("sampling.top_k", f"must be in [1, {limits.vocab_size}]; got {params.top_k}")
    if params.HasField("min_p"):
        _check_range(bad, "sampling.min_p", params.min_p, 0.0, 1.0)
    if params.HasField("repetition_penalty"):
        _check_range(bad, "sampling.repetition_penalty", params.repetition_penalty, 0.0, 10.0, low_open=True)
    if params.HasField("presence_penalty"):
        _check_range(bad, "sampling.presence_penalty", params.presence_penalty, -2.0, 2.0)
    if params.HasField("frequency_penalty"):
        _check_range(bad, "sampling.frequency_penalty", params.frequency_penalty, -2.0, 2.0)

    logit_bias = _logit_bias(params, limits, bad)
    has = params.HasField
    return SamplingParams(
        temperature=params.temperature if has("temperature") else None,
        top_p=params.top_p if has("top_p") else None,
        top_k=params.top_k if has("top_k") else None,
        min_p=params.min_p if has("min_p") else None,
        seed=params.seed if has("seed") else None,
        repetition_penalty=params.repetition_penalty if has("repetition_penalty") else None,
        presence_penalty=params.presence_penalty if has("presence_penalty") else None,
        frequency_penalty=params.frequency_penalty if has("frequency_penalty") else None,
        logit_bias=logit_bias,
    )


def _logit_bias(
    params: generation_pb2.SamplingParams, limits: Limits, bad: _Violations
) -> tuple[tuple[TokenId, float], ...]:
    entries = params.logit_bias
    if len(entries) > MAX_LOGIT_BIAS_ENTRIES:
        bad.add("sampling.logit_bias", f"at most {MAX_LOGIT_BIAS_ENTRIES} entries; got {len(entries)}")
        return ()
    found: list[tuple[TokenId, float]] = []
    for token, value in sorted(entries.items()):
        field = f"sampling.logit_bias[{token}]"
        if token >= limits.vocab_size:
            bad.add(field, f"the token id must be below the vocabulary size {limits.vocab_size}")
        elif not math.isfinite(value) or not -MAX_LOGIT_BIAS <= value <= MAX_LOGIT_BIAS:
            bad.add(field, f"must be in [{-MAX_LOGIT_BIAS:g}, {MAX_LOGIT_BIAS:g}]; got {value:g}")
        elif value != 0.0:
            found.append((TokenId(token), value))
    return tuple(found)


def _text_field(bad: _Violations, field: str, value: str, most: int) -> None:
    if not value:
        bad.add(field, "must not be empty")
    elif len(value) > most:
        bad.add(field, f"at most {most} characters; got {len(value)}")


def _structured_output(
    request: generation_pb2.GenerateRequest, limits: Limits, bad: _Violations
) -> StructuredOutput | None:
    """The request's format, with its sizes checked (whether it compiles is the engine's to say)."""
    if not request.HasField("structured_output"):
        return None
    message = request.structured_output
    syntaxes = generation_pb2.Grammar.Syntax
    spec: StructuredOutput
    match message.WhichOneof("format"):
        case "json_schema":
            _text_field(bad, "structured_output.json_schema", message.json_schema, MAX_SCHEMA_CHARS)
            spec = StructuredOutput(StructuredOutputKind.JSON_SCHEMA, message.json_schema)
        case "json_object":
            spec = StructuredOutput(StructuredOutputKind.JSON_OBJECT)
        case "regex":
            _text_field(bad, "structured_output.regex", message.regex, MAX_REGEX_CHARS)
            spec = StructuredOutput(StructuredOutputKind.REGEX, message.regex)
        case "grammar":
            grammar = message.grammar
            _text_field(bad, "structured_output.grammar.text", grammar.text, MAX_SCHEMA_CHARS)
            match grammar.syntax:
                case syntaxes.SYNTAX_LARK:
                    kind = StructuredOutputKind.GRAMMAR_LARK
                case syntaxes.SYNTAX_GBNF:
                    kind = StructuredOutputKind.GRAMMAR_GBNF
                case syntaxes.SYNTAX_UNSPECIFIED:
                    bad.add("structured_output.grammar.syntax", "is required: SYNTAX_LARK or SYNTAX_GBNF")
                    return None
                case other:
                    bad.add("structured_output.grammar.syntax", f"unknown syntax {other}")
                    return None
            spec = StructuredOutput(kind, grammar.text)
        case "choice":
            options = message.choice.options
            if not 1 <= len(options) <= MAX_CHOICES:
                bad.add("structured_output.choice.options", f"1 to {MAX_CHOICES} options; got {len(options)}")
                return None
            for index, option in enumerate(options):
                _text_field(bad, f"structured_output.choice.options[{index}]", option, MAX_CHOICE_CHARS)
            spec = StructuredOutput(StructuredOutputKind.CHOICE, choices=tuple(options))
        case None:
            bad.add("structured_output", "set one of json_schema, json_object, regex, grammar or choice")
            return None
        case other:
            raise AssertionError(f"unhandled format {other}")
    if spec.kind not in limits.structured_output_kinds:
        offered = ", ".join(sorted(k.value for k in limits.structured_output_kinds)) or "none"
        bad.add(
            "structured_output", f"{spec.kind.value} is not supported by this engine (supported: {offered})"
        )
        return None
    return spec


def _samples(
    request: generation_pb2.GenerateRequest, sampling: SamplingParams, limits: Limits, bad: _Violations
) -> int:
    if not request.HasField("n") or request.n == 0:
        return 1
    n = request.n
    if n > limits.max_samples:
        bad.add("n", f"must be in [1, {limits.max_samples}] on this server; got {n}")
    elif n > 1 and sampling.temperature == 0.0:
        bad.add("n", "n > 1 needs sampling: with temperature 0 every sample would be the same answer")
    return n


def _stopping(
    stopping: generation_pb2.StoppingCriteria, prompt_tokens: int, limits: Limits, bad: _Violations
) -> StoppingParams:
    room = limits.context_length - prompt_tokens
    if stopping.HasField("max_tokens"):
        max_tokens = stopping.max_tokens
        if max_tokens < 1:
            bad.add("stopping.max_tokens", "must be at least 1")
        elif max_tokens > room and room > 0:
            bad.add(
                "stopping.max_tokens",
                f"the prompt is {prompt_tokens} tokens and the context holds {limits.context_length}, "
                f"so at most {room} tokens can be generated; got {max_tokens}",
            )
    else:
        max_tokens = max(1, min(limits.default_max_tokens, room))
    if stopping.min_tokens > max_tokens:
        bad.add(
            "stopping.min_tokens", f"must be at most max_tokens ({max_tokens}); got {stopping.min_tokens}"
        )
    # Counts first: an over-long list is one violation, and its elements are not looked at.
    if len(stopping.stop) > MAX_STOP_STRINGS:
        bad.add("stopping.stop", f"at most {MAX_STOP_STRINGS} stop strings; got {len(stopping.stop)}")
    else:
        for index, stop in enumerate(stopping.stop):
            if not 1 <= len(stop) <= MAX_STOP_STRING_CHARS:
                bad.add(
                    f"stopping.stop[{index}]",
                    f"must be 1 to {MAX_STOP_STRING_CHARS} characters; got {len(stop)}",
                )
    if len(stopping.stop_token_ids) > MAX_STOP_TOKEN_IDS:
        bad.add(
            "stopping.stop_token_ids", f"at most {MAX_STOP_TOKEN_IDS} ids; got {len(stopping.stop_token_ids)}"
        )
    else:
        for index, token in enumerate(stopping.stop_token_ids):
            if token >= limits.vocab_size:
                bad.add(
                    f"stopping.stop_token_ids[{index}]",
                    f"must be below the vocabulary size {limits.vocab_size}",
                )
    return StoppingParams(
        max_tokens=max_tokens,
        min_tokens=stopping.min_tokens,
        stop_token_ids=tuple(TokenId(t) for t in stopping.stop_token_ids),
        ignore_eos=stopping.ignore_eos,
    )


def _speculation(
    options: generation_pb2.SpeculativeOptions, limits: Limits, bad: _Violations
) -> SpeculationParams | None:
    methods = generation_pb2.SpeculativeOptions.SpeculativeMethod
    has_length = options.HasField("draft_length")
    if has_length and not 1 <= options.draft_length <= MAX_DRAFT_LENGTH:
        bad.add("speculative.draft_length", f"must be in [1, {MAX_DRAFT_LENGTH}]; got {options.draft_length}")
    draft_length = (
        options.draft_length if has_length else (limits.default_draft_length or FALLBACK_DRAFT_LENGTH)
    )
    match options.method:
        case methods.SPECULATIVE_METHOD_UNSPECIFIED:
            if not has_length:
                return None
            method = limits.default_speculation
        case methods.SPECULATIVE_METHOD_OFF:
            method = SpeculationMethod.OFF
        case methods.SPECULATIVE_METHOD_NGRAM:
            method = SpeculationMethod.NGRAM
        case methods.SPECULATIVE_METHOD_EAGLE3:
            method = SpeculationMethod.EAGLE3
        case other:
            bad.add("speculative.method", f"unknown method {other}")
            return None
    available = limits.speculation_methods
    if available is not None and method not in available:
        names = ", ".join(sorted(m.value for m in available))
        bad.add("speculative.method", f"{method.value} is not available on this server (available: {names})")
        return None
    return SpeculationParams(method=method, draft_length=draft_length)


def _refuse_unsupported(
    request: generation_pb2.GenerateRequest, unsupported: Sequence[UnsupportedField], bad: _Violations
) -> None:
    """A violation for each field the request sets that the engine would not honour."""
    for item in unsupported:
        value = _set_value(request, item.field)
        if value is None or (item.allowed is not None and value == item.allowed):
            continue
        allowed = f" or {item.allowed:g}" if item.allowed is not None else ""
        bad.add(item.field, f"this server does not honour it: {item.reason}; leave it unset{allowed}")


def _set_value(request: generation_pb2.GenerateRequest, path: str) -> object | None:
    """The value of a ``section.field`` path the request sets; None when unset (or at its default)."""
    section_name, _, leaf = path.partition(".")
    message: Message = request  # the generic Message API takes any field name
    if not message.HasField(section_name):
        return None
    section: Message = getattr(message, section_name)
    descriptor = section.DESCRIPTOR.fields_by_name.get(leaf)
    if descriptor is None:
        return None
    value: object = getattr(section, leaf)
    if descriptor.has_presence:
        return value if section.HasField(leaf) else None
    return value or None  # proto3 scalars and lists without presence: the default means unset


def prepare_generation(
    request: generation_pb2.GenerateRequest,
    tokenizer: Tokenizer,
    limits: Limits,
    *,
    assigned_id: RequestId,
    require_id: bool,
) -> PreparedGeneration:
    """Validate ``request`` and turn it into a ``PreparedGeneration``; raises ``InvalidArgument``."""
    bad = _Violations()
    request_id = _request_id(request.request_id, required=require_id, bad=bad) or assigned_id
    prompt = _prompt_from(request, tokenizer, limits, bad)
    prompt_tokens = len(prompt.token_ids)
    if prompt_tokens >= limits.context_length:
        field = request.WhichOneof("input") or "input"
        bad.add(
            field,
            f"the prompt is {prompt_tokens} tokens but the context holds {limits.context_length} "
            f"(prompt plus output); send at most {limits.context_length - 1} prompt tokens",
        )
    elif request.WhichOneof("input") is not None and prompt_tokens == 0 and not bad.items:
        bad.add(request.WhichOneof("input") or "input", "the prompt tokenizes to no tokens")
    sampling = _sampling(request.sampling, limits, bad)
    stopping = _stopping(request.stopping, prompt_tokens, limits, bad)
    output = request.output
    if output.top_logprobs > MAX_TOP_LOGPROBS:
        bad.add("output.top_logprobs", f"must be at most {MAX_TOP_LOGPROBS}; got {output.top_logprobs}")
    elif output.top_logprobs and not output.logprobs:
        bad.add("output.top_logprobs", "requires output.logprobs")
    speculation = _speculation(request.speculative, limits, bad)
    structured_output = _structured_output(request, limits, bad)
    samples = _samples(request, sampling, limits, bad)
    _refuse_unsupported(request, limits.unsupported, bad)
    timeout_s: float | None = None
    if request.HasField("timeout"):
        timeout = request.timeout
        timeout_s = timeout.seconds + timeout.nanos / 1e9
        if timeout_s <= 0 or not -999_999_999 <= timeout.nanos <= 999_999_999:
            bad.add("timeout", "must be a positive duration")
    bad.raise_if_any()
    return PreparedGeneration(
        engine_request=EngineRequest(
            request_id=RequestId(request_id),
            prompt_token_ids=prompt.token_ids,
            sampling=sampling,
            stopping=stopping,
            logprobs=output.logprobs,
            top_logprobs=output.top_logprobs,
            speculation=speculation,
            structured_output=structured_output,
        ),
        samples=samples,
        stop_strings=tuple(request.stopping.stop),
        include_token_ids=output.token_ids if output.HasField("token_ids") else True,
        include_text=output.text if output.HasField("text") else True,
        timeout_s=timeout_s,
    )
