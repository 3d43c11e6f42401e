"""Typed, immutable views of what a generation streams (no protobuf types leak out)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf import duration_pb2

from tokenwire.v1 import generation_pb2, model_pb2


class FinishReason(enum.IntEnum):
    """Why a generation ended (``tokenwire.v1.FinishReason``; values are the wire numbers)."""

    UNSPECIFIED = 0
    END_OF_SEQUENCE = 1
    LENGTH = 2
    STOP_STRING = 3
    STOP_TOKEN = 4
    CANCELLED = 5
    DEADLINE = 6

    @property
    def proto_name(self) -> str:
        """The enum value's name in the proto, e.g. ``FINISH_REASON_LENGTH``."""
        return f"FINISH_REASON_{self.name}"


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token_id: int
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The log-probability of one generated token, with the most likely candidates when asked for."""

    token_id: int
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Timing:
    """Server-measured durations in seconds, from the request's arrival (None when the server sent none)."""

    queued_s: float | None
    time_to_first_token_s: float | None
    total_s: float | None


@dataclass(frozen=True, slots=True)
class SpeculativeStats:
    draft_tokens: int
    accepted_tokens: int
    decode_steps: int


@dataclass(frozen=True, slots=True)
class Started:
    """First event of a generation: the server accepted it."""

    request_id: str
    prompt_tokens: int
    model: str


@dataclass(frozen=True, slots=True)
class Delta:
    """New output since the previous event (never cumulative)."""

    request_id: str
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    """Last event of a generation: why it ended, usage and timing."""

    request_id: str
    reason: FinishReason
    usage: Usage
    timing: Timing
    speculative: SpeculativeStats
    stop_string: str | None = None
    stop_token_id: int | None = None


Event = Started | Delta | Finished
"""One event of a generation: one ``Started``, any number of ``Delta``, one ``Finished``."""


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole generation, as returned by ``complete`` and ``GenerationHandle.result``."""

    request_id: str
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...]
    started: Started
    finished: Finished

    @property
    def reason(self) -> FinishReason:
        return self.finished.reason

    @property
    def usage(self) -> Usage:
        return self.finished.usage

    @property
    def timing(self) -> Timing:
        return self.finished.timing


class CompletionBuilder:
    """Accumulates events into a ``Completion`` (checking the stream's order)."""

    def __init__(self) -> None:
        self._started: Started | None = None
        self._finished: Finished | None = None
        self._text: list[str] = []
        self._token_ids: list[int] = []
        self._logprobs: list[TokenLogprob] = []

    def add(self, event: Event) -> None:
        match event:
            case Started():
                self._started = event
            case Delta():
                self._text.append(event.text)
                self._token_ids.extend(event.token_ids)
                self._logprobs.extend(event.logprobs)
            case Finished():
                self._finished = event

    def build(self) -> Completion:
        if self._started is None or self._finished is None:
            raise RuntimeError("the generation's stream is incomplete")
        return Completion(
            request_id=self._finished.request_id,
            text="".join(self._text),
            token_ids=tuple(self._token_ids),
            logprobs=tuple(self._logprobs),
            started=self._started,
            finished=self._finished,
        )


@dataclass(frozen=True, slots=True)
class SpeculativeConfig:
    enabled: bool
    method: str
    draft_length: int


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """``GetModelInfo``: the model and engine behind the server."""

    model: str
    engine: str
    context_length: int
    vocab_size: int
    has_chat_template: bool
    speculative: SpeculativeConfig
    max_batch_size: int
    default_max_tokens: int
    eos_token_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Load:
    """``GetLoad``: the engine's current occupancy."""

    active_requests: int
    waiting_requests: int
    in_flight_requests: int


@dataclass(frozen=True, slots=True)
class Tokenization:
    """``Tokenize``: the token ids, and for chat input the rendered prompt."""

    token_ids: tuple[int, ...]
    rendered_prompt: str


# --- conversions from the wire -------------------------------------------------------------------


def _seconds(present: bool, value: duration_pb2.Duration) -> float | None:
    return value.seconds + value.nanos / 1e9 if present else None


def _logprob(message: generation_pb2.TokenLogprob) -> TokenLogprob:
    return TokenLogprob(
        token_id=message.token_id,
        logprob=message.logprob,
        top=tuple(TopLogprob(token_id=t.token_id, logprob=t.logprob) for t in message.top),
    )


def event_from_proto(
    request_id: str,
    response: generation_pb2.GenerateResponse | generation_pb2.SessionResponse,
) -> Event | None:
    """The typed event in ``response``; None for an event kind this client does not know."""
    kind = response.WhichOneof("event")
    if kind == "started":
        return Started(request_id, response.started.prompt_tokens, response.started.model)
    if kind == "delta":
        delta = response.delta
        return Delta(
            request_id,
            delta.text,
            tuple(delta.token_ids),
            tuple(_logprob(lp) for lp in delta.logprobs),
        )
    if kind == "finished":
        fin = response.finished
        timing = fin.timing
        matched = fin.WhichOneof("matched_stop")
        try:
            reason = FinishReason(fin.reason)
        except ValueError:
            reason = FinishReason.UNSPECIFIED
        return Finished(
            request_id=request_id,
            reason=reason,
            usage=Usage(fin.usage.prompt_tokens, fin.usage.completion_tokens, fin.usage.cached_prompt_tokens),
            timing=Timing(
                queued_s=_seconds(timing.HasField("queued"), timing.queued),
                time_to_first_token_s=_seconds(
                    timing.HasField("time_to_first_token"), timing.time_to_first_token
                ),
                total_s=_seconds(timing.HasField("total"), timing.total),
            ),
            speculative=SpeculativeStats(
                fin.speculative.draft_tokens, fin.speculative.accepted_tokens, fin.speculative.decode_steps
            ),
            stop_string=fin.stop_string if matched == "stop_string" else None,
            stop_token_id=fin.stop_token_id if matched == "stop_token_id" else None,
        )
    return None


def model_info_from_proto(message: model_pb2.GetModelInfoResponse) -> ModelInfo:
    spec = message.speculative
    return ModelInfo(
        model=message.model,
        engine=message.engine,
        context_length=message.context_length,
        vocab_size=message.vocab_size,
        has_chat_template=message.has_chat_template,
        speculative=SpeculativeConfig(spec.enabled, spec.method, spec.draft_length),
        max_batch_size=message.max_batch_size,
        default_max_tokens=message.default_max_tokens,
        eos_token_ids=tuple(message.eos_token_ids),
    )
