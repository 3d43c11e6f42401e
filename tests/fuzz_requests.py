"""Hypothesis strategies for every field of GenerateRequest and SessionRequest, valid and not.

Each field is drawn as absent, as a value inside its documented range (boundaries,
subnormals and the extremes included), or, for a few fields per request, as anything
its wire type can carry: NaN, infinities, negative and huge numbers, unknown enum
values, empty, huge, unicode and control-character strings, huge repeated fields.
Most requests are therefore valid, so generation runs, and every invalid value still
shows up often. Requests stay cheap on the embedded model: valid ``max_tokens`` are
mostly 1 to 4, and the larger sizes (long prompts, whole-context outputs, messages
past the 4 MiB gRPC limit) are drawn rarely.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError, Message
from hypothesis import strategies as st
from tokenwire.v1 import generation_pb2 as pb

T = TypeVar("T")

U32 = 2**32 - 1
U64 = 2**64 - 1
I32 = 2**31 - 1
I64 = 2**63 - 1
F32_TINY: float = struct.unpack("<f", struct.pack("<I", 1))[0]
"""The smallest positive float32 (a subnormal, about 1.4e-45)."""
DURATION_SECONDS = 315_576_000_000
"""google.protobuf.Duration's documented range is +-10,000 years of seconds."""
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
ROLES = ("system", "user", "assistant", "tool")
TRICKY_STRINGS = (
    "",
    " ",
    "\x00",
    "\n\r\t",
    "\u200b",
    "\ufeff",
    "\U0001f600",
    "e\u0301",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "{{ messages }}",
    "{% for m in messages %}",
    "%s%n",
    "A" * 128,
    "A" * 129,
)
HUGE_CHARS = (257, 5_000, 50_000, 200_000)
"""Huge strings: past the stop-string limit, then long prompts (tokenizing them is not free)."""
STOP_COUNTS = (17, 100, 1_000, 100_000)
"""Huge stop lists: just past the documented cap of 16, then thousands."""
ID_COUNTS = (65, 121, 1_000, 100_000)
"""Huge id lists: just past the documented cap of 64 stop ids, then thousands."""
PAST_LIMIT_CHARS = 4_500_000
PAST_LIMIT_IDS = 2_200_000
"""Sizes that put a message past gRPC's 4 MiB limit (only the transport sees those)."""


class PrettyPrinter(Protocol):
    """The part of Hypothesis' (IPython-style) pretty printer a ``_repr_pretty_`` uses."""

    def text(self, obj: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """What GetModelInfo says about the served model; valid ranges depend on it."""

    vocab_size: int
    context_length: int


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """Draw from one of ``choices``, each picked in proportion to its weight."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def repeated(
    pattern: st.SearchStrategy[list[T]], counts: Sequence[int], *, past_limit: int | None = None
) -> st.SearchStrategy[list[T]]:
    """A list of one of ``counts`` items, cycling a drawn pattern (drawing each item would be slow).

    ``past_limit``: a count drawn now and then that makes the message too big for gRPC; rarer
    than the others, as building and sending it costs more and only the transport sees it.
    """

    def build(items: list[T], count: int) -> list[T]:
        return (items * (count // len(items) + 1))[:count]

    sizes: st.SearchStrategy[int] = st.sampled_from(counts)
    if past_limit is not None:
        sizes = weighted((6, sizes), (1, st.just(past_limit)))
    return st.builds(build, pattern.filter(bool), sizes)


def huge_text(
    counts: Sequence[int] = HUGE_CHARS, past_limit: int | None = PAST_LIMIT_CHARS
) -> st.SearchStrategy[str]:
    """A long string of any characters, built by repeating a short drawn one."""
    pattern = st.lists(st.characters(codec="utf-8"), min_size=1, max_size=6)
    return repeated(pattern, counts, past_limit=past_limit).map("".join)


def any_text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Any unicode a protobuf string can hold: control characters, combining marks, emoji, tricks."""
    return st.one_of(st.text(max_size=max_size), st.sampled_from(TRICKY_STRINGS))


def wild_text() -> st.SearchStrategy[str]:
    return weighted((4, any_text()), (1, huge_text()))


def float32s(low: float, high: float) -> st.SearchStrategy[float]:
    """Inside [low, high], its ends, signed zeros and tiny subnormals included (when inside)."""
    inside = st.floats(low, high, width=32)
    edges = st.sampled_from(
        [v for v in (low, high, 0.0, -0.0, 1e-40, F32_TINY, 1e-7, 1.0) if low <= v <= high]
    )
    return weighted((3, inside), (1, edges))


def wild_float32s() -> st.SearchStrategy[float]:
    """Any float32: NaN, infinities, subnormals, negative and huge values."""
    specials = st.sampled_from(
        [float("nan"), float("inf"), float("-inf"), -1e-40, 3.4e38, -3.4e38, F32_TINY, -F32_TINY, -1.0, 1e10]
    )
    return st.one_of(st.floats(width=32), specials)


def wild_uint(high: int) -> st.SearchStrategy[int]:
    """Anything from 0 to ``high`` (the wire type's maximum), its edges often."""
    return st.one_of(st.integers(0, high), st.sampled_from([0, 1, high, high - 1, 2**31, 2**31 - 1]))


class Field(enum.Enum):
    """The fields a request may draw outside their documented ranges."""

    REQUEST_ID = "request_id"
    INPUT = "input"
    TEMPERATURE = "temperature"
    TOP_P = "top_p"
    TOP_K = "top_k"
    MIN_P = "min_p"
    REPETITION_PENALTY = "repetition_penalty"
    PRESENCE_PENALTY = "presence_penalty"
    FREQUENCY_PENALTY = "frequency_penalty"
    MAX_TOKENS = "max_tokens"
    MIN_TOKENS = "min_tokens"
    STOP = "stop"
    STOP_TOKEN_IDS = "stop_token_ids"
    TOP_LOGPROBS = "top_logprobs"
    TIMEOUT = "timeout"
    METHOD = "method"
    DRAFT_LENGTH = "draft_length"


SAMPLING_FIELDS = frozenset(f for f in Field if f.value in pb.SamplingParams.DESCRIPTOR.fields_by_name)


def request_ids(*, wild: bool) -> st.SearchStrategy[str]:
    """Valid ids: 1 to 128 printable ASCII characters. Wild: any shape at all."""
    valid = weighted(
        (4, st.text(PRINTABLE_ASCII, min_size=1, max_size=16)),
        (1, st.text(PRINTABLE_ASCII, min_size=120, max_size=128)),
    )
    if not wild:
        return valid
    return st.one_of(
        st.just(""),
        st.text(min_size=1, max_size=40),
        st.text(PRINTABLE_ASCII, min_size=129, max_size=300),
        huge_text((129, 10_000, 1_000_000), past_limit=None),
        st.sampled_from(TRICKY_STRINGS),
    )


def _chat_messages(*, wild: bool) -> st.SearchStrategy[list[pb.ChatMessage]]:
    roles: st.SearchStrategy[str] = st.sampled_from(ROLES)
    contents = st.text(max_size=80)
    if wild:
        roles = weighted((3, roles), (1, st.one_of(any_text(), st.sampled_from(["User", "SYSTEM", "bot"]))))
        contents = wild_text()
    message = st.builds(pb.ChatMessage, role=roles, content=contents)
    few = st.lists(message, min_size=0 if wild else 1, max_size=5)
    if not wild:
        return few
    # Many messages are short ones: a huge count of huge messages would only measure memory.
    short = st.builds(pb.ChatMessage, role=roles, content=any_text(max_size=16))
    return weighted((6, few), (1, repeated(st.lists(short, min_size=1, max_size=3), (200, 2_000, 20_000))))


def _token_ids(limits: ModelLimits, *, wild: bool) -> st.SearchStrategy[list[int]]:
    valid_id = st.integers(0, limits.vocab_size - 1)
    few = st.lists(valid_id, min_size=1, max_size=40)
    if not wild:
        return few
    any_id = weighted((3, valid_id), (1, wild_uint(U32)))
    longest = limits.context_length
    return st.one_of(
        st.lists(any_id, max_size=40),
        repeated(
            st.lists(any_id, min_size=1, max_size=4),
            (longest - 1, longest, 1_000, 100_000),
            past_limit=PAST_LIMIT_IDS,
        ),
    )


@st.composite
def _input(draw: st.DrawFn, request: pb.GenerateRequest, limits: ModelLimits, wild: bool) -> None:
    kinds = ["text", "token_ids", "chat"] + (["none"] if wild else [])
    match draw(st.sampled_from(kinds)):
        case "text":
            request.text = draw(wild_text() if wild else st.text(min_size=1, max_size=80))
        case "token_ids":
            request.token_ids.SetInParent()
            request.token_ids.ids.extend(draw(_token_ids(limits, wild=wild)))
        case "chat":
            request.chat.SetInParent()
            request.chat.messages.extend(draw(_chat_messages(wild=wild)))
        case _:
            pass


@st.composite
def _sampling(
    draw: st.DrawFn, message: pb.SamplingParams, wild: frozenset[Field], limits: ModelLimits
) -> None:
    floats = {
        Field.TEMPERATURE: (0.0, 100.0),
        Field.TOP_P: (F32_TINY, 1.0),
        Field.MIN_P: (0.0, 1.0),
        Field.REPETITION_PENALTY: (F32_TINY, 10.0),
        Field.PRESENCE_PENALTY: (-2.0, 2.0),
        Field.FREQUENCY_PENALTY: (-2.0, 2.0),
    }
    for field, (low, high) in floats.items():
        if field in wild:
            setattr(message, field.value, draw(wild_float32s()))
        elif draw(st.booleans()):
            setattr(message, field.value, draw(float32s(low, high)))
    if Field.TOP_K in wild:
        message.top_k = draw(wild_uint(U32))
    elif draw(st.booleans()):
        message.top_k = draw(st.one_of(st.integers(1, 50), st.sampled_from([1, limits.vocab_size])))
    if draw(st.booleans()):
        message.seed = draw(st.one_of(st.integers(0, U64), st.sampled_from([0, U64])))


@st.composite
def _stopping(
    draw: st.DrawFn, message: pb.StoppingCriteria, wild: frozenset[Field], limits: ModelLimits
) -> None:
    max_tokens: int | None = None
    if Field.MAX_TOKENS in wild:
        max_tokens = draw(wild_uint(U32))
    elif draw(st.booleans()):
        # Mostly short; now and then anything up to the whole context.
        max_tokens = draw(weighted((9, st.integers(1, 4)), (1, st.integers(1, limits.context_length))))
    if max_tokens is not None:
        message.max_tokens = max_tokens
    if Field.MIN_TOKENS in wild:
        message.min_tokens = draw(wild_uint(U32))
    elif draw(st.booleans()):
        message.min_tokens = draw(st.integers(0, max_tokens if max_tokens is not None else 2))
    if Field.STOP in wild:
        one = weighted((3, any_text()), (1, huge_text()))
        message.stop.extend(
            draw(
                st.one_of(
                    st.lists(one, max_size=20),
                    repeated(st.lists(any_text(max_size=8), min_size=1, max_size=4), STOP_COUNTS),
                )
            )
        )
    elif draw(st.booleans()):
        message.stop.extend(draw(st.lists(st.text(min_size=1, max_size=12), max_size=4)))
    if Field.STOP_TOKEN_IDS in wild:
        any_id = weighted((3, st.integers(0, limits.vocab_size - 1)), (1, wild_uint(U32)))
        out_of_vocab = st.lists(st.integers(limits.vocab_size, U32), min_size=1, max_size=4)
        message.stop_token_ids.extend(
            draw(
                st.one_of(
                    st.lists(any_id, max_size=70),
                    repeated(
                        st.one_of(st.lists(any_id, min_size=1, max_size=4), out_of_vocab),
                        ID_COUNTS,
                        past_limit=PAST_LIMIT_IDS,
                    ),
                )
            )
        )
    elif draw(st.booleans()):
        message.stop_token_ids.extend(draw(st.lists(st.integers(0, limits.vocab_size - 1), max_size=4)))
    message.ignore_eos = draw(st.booleans())


@st.composite
def _output(draw: st.DrawFn, message: pb.OutputOptions, wild: frozenset[Field]) -> None:
    if draw(st.booleans()):
        message.token_ids = draw(st.booleans())
    if draw(st.booleans()):
        message.text = draw(st.booleans())
    message.logprobs = draw(st.booleans())
    if Field.TOP_LOGPROBS in wild:
        message.top_logprobs = draw(wild_uint(U32))
    elif message.logprobs and draw(st.booleans()):
        message.top_logprobs = draw(st.integers(0, 20))


@st.composite
def _timeout(draw: st.DrawFn, wild: bool) -> duration_pb2.Duration:
    if not wild:
        # Positive: from a nanosecond (ends before the first token) to longer than any case runs.
        return duration_pb2.Duration(
            seconds=draw(st.sampled_from([0, 0, 1, 5, 3_600, DURATION_SECONDS])),
            nanos=draw(st.integers(1, 999_999_999)),
        )
    seconds = st.one_of(
        st.integers(-DURATION_SECONDS, DURATION_SECONDS), st.integers(-I64 - 1, I64), st.sampled_from([0, -1])
    )
    nanos = st.one_of(st.integers(-I32 - 1, I32), st.sampled_from([0, -1, 999_999_999, 1_000_000_000]))
    return duration_pb2.Duration(seconds=draw(seconds), nanos=draw(nanos))


@st.composite
def _speculative(draw: st.DrawFn, message: pb.SpeculativeOptions, wild: frozenset[Field]) -> None:
    if Field.METHOD in wild:
        # Unknown values of an open enum travel as plain numbers.
        unknown = draw(st.one_of(st.integers(-I32 - 1, I32), st.sampled_from([4, -1, I32])))
        message.method = pb.SpeculativeOptions.SpeculativeMethod.ValueType(unknown)
    elif draw(st.booleans()):
        message.method = draw(st.sampled_from(pb.SpeculativeOptions.SpeculativeMethod.values()))
    if Field.DRAFT_LENGTH in wild:
        message.draft_length = draw(wild_uint(U32))
    elif draw(st.booleans()):
        message.draft_length = draw(st.integers(1, 16))


@st.composite
def generate_requests(
    draw: st.DrawFn,
    limits: ModelLimits,
    *,
    ids: st.SearchStrategy[str] | None = None,
) -> pb.GenerateRequest:
    """A GenerateRequest; a few fields (often none) are drawn from everything the wire allows.

    ``ids``: where valid request ids come from (a Session draws from a small pool so that
    cancels and duplicates hit); default: any valid id, or none.
    """
    wild = draw(
        weighted(
            (2, st.just(frozenset[Field]())),
            (3, st.frozensets(st.sampled_from(list(Field)), min_size=1, max_size=3)),
        )
    )
    if draw(weighted((3, st.just(False)), (1, st.just(True)))):
        wild |= {Field.INPUT}  # the input is where sizes matter most: make it wild more often
    request = pb.GenerateRequest()
    if Field.REQUEST_ID in wild:
        request.request_id = draw(request_ids(wild=True))
    elif ids is not None:
        request.request_id = draw(ids)
    elif draw(st.booleans()):
        request.request_id = draw(request_ids(wild=False))
    draw(_input(request, limits, Field.INPUT in wild))
    if draw(st.booleans()) or wild & SAMPLING_FIELDS:
        request.sampling.SetInParent()
        draw(_sampling(request.sampling, wild, limits))
    if draw(st.booleans()) or wild & {Field.MAX_TOKENS, Field.MIN_TOKENS, Field.STOP, Field.STOP_TOKEN_IDS}:
        request.stopping.SetInParent()
        draw(_stopping(request.stopping, wild, limits))
    if not request.stopping.HasField("max_tokens") and draw(
        weighted((9, st.just(True)), (1, st.just(False)))
    ):
        # Absent max_tokens means the server's default: keep it rare, the default may be long.
        request.stopping.max_tokens = draw(st.integers(1, 4))
    if draw(st.booleans()) or Field.TOP_LOGPROBS in wild:
        request.output.SetInParent()
        draw(_output(request.output, wild))
    if Field.TIMEOUT in wild or draw(weighted((3, st.just(False)), (1, st.just(True)))):
        request.timeout.CopyFrom(draw(_timeout(Field.TIMEOUT in wild)))
    if draw(st.booleans()) or wild & {Field.METHOD, Field.DRAFT_LENGTH}:
        request.speculative.SetInParent()
        draw(_speculative(request.speculative, wild))
    return request


class Behaviour(enum.Enum):
    """What the client does while a Generate call runs."""

    READ_ALL = "read_all"
    CANCEL_EARLY = "cancel_early"
    """Cancel the call after its first response."""
    DEADLINE = "deadline"
    """A short gRPC deadline on the call."""


@dataclass(frozen=True, slots=True)
class GenerateCall:
    request: pb.GenerateRequest
    behaviour: Behaviour = Behaviour.READ_ALL
    deadline_s: float = 0.0

    def __repr__(self) -> str:
        deadline = f", deadline_s={self.deadline_s}" if self.behaviour is Behaviour.DEADLINE else ""
        return f"GenerateCall({self.behaviour.value}{deadline}, {describe(self.request)})"

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints failing cases with this: keep them short


@dataclass(frozen=True, slots=True)
class RawCall:
    """Bytes sent as one message, decodable or not; ``session`` wraps them as a Session's only message."""

    data: bytes
    session: bool

    @property
    def decodes(self) -> bool:
        """Whether the protobuf library (the server's) can parse the bytes."""
        message_type = pb.SessionRequest if self.session else pb.GenerateRequest
        try:
            message_type.FromString(self.data)
        except DecodeError:
            return False
        return True

    def __repr__(self) -> str:
        shown = self.data if len(self.data) <= 96 else self.data[:96] + b"..."
        return f"RawCall(session={self.session}, {len(self.data)} bytes: {shown!r})"

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints failing cases with this: keep them short


@st.composite
def generate_calls(draw: st.DrawFn, limits: ModelLimits) -> list[GenerateCall]:
    """One to three Generate calls to run at once, each read to the end, cancelled early or deadlined."""
    behaviour = weighted(
        (6, st.just(Behaviour.READ_ALL)),
        (1, st.just(Behaviour.CANCEL_EARLY)),
        (1, st.just(Behaviour.DEADLINE)),
    )
    call = st.builds(
        GenerateCall,
        request=generate_requests(limits),
        behaviour=behaviour,
        deadline_s=st.floats(0.001, 1.0),
    )
    return draw(st.lists(call, min_size=1, max_size=3))


SESSION_IDS = ("a", "b", "c", "d")


@dataclass(frozen=True, slots=True)
class SessionCase:
    """The messages one Session stream writes, in order."""

    actions: tuple[pb.SessionRequest, ...]

    def __repr__(self) -> str:
        return f"SessionCase([{', '.join(describe(action) for action in self.actions)}])"

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints failing cases with this: keep them short


@st.composite
def session_actions(draw: st.DrawFn, limits: ModelLimits) -> SessionCase:
    """What a client writes on one Session stream: starts, cancels and empty actions, in any order.

    Ids come mostly from a small pool, so duplicates in flight and cancels of running,
    finished and unknown ids all happen; now and then a burst overflows the engine's queue.
    """
    pool = st.sampled_from(SESSION_IDS)
    start = generate_requests(limits, ids=weighted((5, pool), (1, request_ids(wild=False)))).map(
        lambda request: pb.SessionRequest(start=request)
    )
    cancel_ids = weighted((5, pool), (1, request_ids(wild=True)))
    cancel = cancel_ids.map(lambda rid: pb.SessionRequest(cancel=pb.SessionCancel(request_id=rid)))
    action = weighted((6, start), (2, cancel), (1, st.just(pb.SessionRequest())))
    few = st.lists(action, min_size=1, max_size=6)
    burst = st.lists(
        st.builds(
            lambda index, request: pb.SessionRequest(start=_with_id(request, f"burst-{index}")),
            st.integers(0, 10**6),
            generate_requests(limits),
        ),
        min_size=10,
        max_size=14,
        unique_by=lambda r: r.start.request_id,
    )
    return SessionCase(tuple(draw(weighted((12, few), (1, burst)))))


def _with_id(request: pb.GenerateRequest, request_id: str) -> pb.GenerateRequest:
    request.request_id = request_id
    return request


def describe(message: Message, *, limit: int = 48) -> str:
    """A short, exact-enough text form of ``message``: long strings and lists are summarised."""
    parts = []
    for field, value in message.ListFields():
        if field.is_repeated:
            items = list(value)
            shown = [_describe_value(item, limit) for item in items[:4]]
            more = f", ... {len(items)} items" if len(items) > 4 else ""
            parts.append(f"{field.name}: [{', '.join(shown)}{more}]")
        else:
            parts.append(f"{field.name}: {_describe_value(value, limit)}")
    return "{" + ", ".join(parts) + "}"


def _describe_value(value: object, limit: int) -> str:
    if isinstance(value, Message):
        return describe(value, limit=limit)
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} chars, {len(value.encode())} bytes)"
    return repr(value)


# --- messages as bytes: what the protobuf API cannot build ---------------------------------------

BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"ok\x80")
"""Invalid UTF-8: a stray byte, a broken pair, a surrogate, an overlong form, past U+10FFFF, a cut."""
_LEN, _VARINT, _I64, _I32 = 2, 0, 1, 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    if wire_type == _LEN:
        payload = _varint(len(payload)) + payload
    return _varint(number << 3 | wire_type) + payload


def _payload(wire_type: int) -> st.SearchStrategy[bytes]:
    match wire_type:
        case 0:
            return st.integers(0, U64).map(_varint)
        case 1:
            return st.binary(min_size=8, max_size=8)
        case 5:
            return st.binary(min_size=4, max_size=4)
        case _:
            return st.binary(max_size=32)


@st.composite
def _bad_string_field(draw: st.DrawFn) -> bytes:
    """A GenerateRequest string field, at any depth, holding invalid UTF-8."""
    bad = draw(st.one_of(st.sampled_from(BAD_UTF8), st.binary(min_size=1, max_size=16)))
    match draw(st.sampled_from(["request_id", "text", "role", "content", "stop"])):
        case "request_id":
            return _field(1, _LEN, bad)
        case "text":
            return _field(2, _LEN, bad)
        case "role":
            return _field(4, _LEN, _field(1, _LEN, _field(1, _LEN, bad)))
        case "content":
            return _field(4, _LEN, _field(1, _LEN, _field(1, _LEN, b"user") + _field(2, _LEN, bad)))
        case _:
            return _field(6, _LEN, _field(3, _LEN, bad))


@st.composite
def raw_calls(draw: st.DrawFn, limits: ModelLimits) -> RawCall:
    """A GenerateRequest's bytes, altered: invalid UTF-8, cut short, unknown or mistyped fields, or noise."""
    base = draw(generate_requests(limits)).SerializeToString()
    match draw(st.sampled_from(["bad_utf8", "truncated", "unknown_field", "wrong_wire_type", "noise"])):
        case "bad_utf8":
            data = base + draw(_bad_string_field())
        case "truncated":
            data = base[: draw(st.integers(0, max(len(base) - 1, 0)))] if base else b"\x0a"
        case "unknown_field":
            wire_type = draw(st.sampled_from([_VARINT, _I64, _LEN, _I32]))
            number = draw(st.integers(10, 2**29 - 1))
            data = base + _field(number, wire_type, draw(_payload(wire_type)))
        case "wrong_wire_type":
            wire_type = draw(st.integers(0, 7))
            data = base + _field(draw(st.integers(1, 9)), wire_type, draw(_payload(wire_type)))
        case _:
            data = draw(st.binary(min_size=1, max_size=64))
    session = draw(st.booleans())
    if session:
        data = _field(1, _LEN, data) if draw(st.booleans()) else _field(2, _LEN, _field(1, _LEN, data))
    return RawCall(data, session)
