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
    STRUCTURED_OUTPUT_COMPLETE = 7
    """The request's structured-output format allowed nothing more."""

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
    sample_index: int = 0
    """Which sample it belongs to (0 to n - 1; 0 when n is 1)."""


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
    sample_index: int = 0
    """Which sample ended (0 to n - 1; 0 when n is 1). With n > 1 each sample has its own
    ``Finished``, and ``usage.prompt_tokens`` counts the prompt in the first of them only."""


Event = Started | Delta | Finished
"""One event of a generation: one ``Started``, any number of ``Delta``, one ``Finished`` per sample."""


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


@dataclass(slots=True)
class _SampleParts:
    text: list[str]
    token_ids: list[int]
    logprobs: list[TokenLogprob]
    finished: Finished | None = None


class CompletionBuilder:
    """Accumulates events into a ``Completion`` per sample (checking the stream's order)."""

    def __init__(self, samples: int = 1) -> None:
        self.samples = samples
        self._started: Started | None = None
        self._parts = [_SampleParts([], [], []) for _ in range(samples)]

    @property
    def finished_count(self) -> int:
        return sum(1 for part in self._parts if part.finished is not None)

    @property
    def complete(self) -> bool:
        """Every sample has its ``Finished``."""
        return self.finished_count == self.samples

    def _part(self, index: int) -> _SampleParts:
        if not 0 <= index < self.samples:
            raise RuntimeError(f"an event for sample {index} of a request for {self.samples}")
        return self._parts[index]

    def add(self, event: Event) -> None:
        match event:
            case Started():
                self._started = event
            case Delta():
                part = self._part(event.sample_index)
                part.text.append(event.text)
                part.token_ids.extend(event.token_ids)
                part.logprobs.extend(event.logprobs)
            case Finished():
                self._part(event.sample_index).finished = event

    def build(self) -> Completion:
        """The ``Completion`` of a request for one sample."""
        if self.samples != 1:
            raise ValueError(f"the request asked for n={self.samples} samples: use the samples' calls")
        return self.build_samples()[0]

    def build_samples(self) -> tuple[Completion, ...]:
        """One ``Completion`` per sample, by index."""
        started = self._started
        if started is None or not self.complete:
            raise RuntimeError("the generation's stream is incomplete")
        completions = []
        for part in self._parts:
            assert part.finished is not None
            completions.append(
                Completion(
                    request_id=part.finished.request_id,
                    text="".join(part.text),
                    token_ids=tuple(part.token_ids),
                    logprobs=tuple(part.logprobs),
                    started=started,
                    finished=part.finished,
                )
            )
        return tuple(completions)


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
    structured_output_kinds: tuple[str, ...] = ()
    """The structured-output kinds the engine follows: "json_schema", "json_object", "regex",
    "grammar_lark", "grammar_gbnf", "choice"."""
    max_samples: int = 1
    """The largest ``n`` the server accepts."""


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
            delta.sample_index,
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
            sample_index=fin.sample_index,
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
        structured_output_kinds=tuple(
            model_pb2.StructuredOutputKind.Name(kind).removeprefix("STRUCTURED_OUTPUT_KIND_").lower()
            for kind in message.structured_output_kinds
            if kind in model_pb2.StructuredOutputKind.values()
        ),
        max_samples=message.max_samples,
    )
