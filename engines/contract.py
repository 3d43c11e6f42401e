"""The engine contract: plain typed values and the Protocol every engine implements.

Nothing here knows about gRPC or protobuf. The service maps its wire messages
onto these values, and every engine (native, TensorRT-LLM, simulation) takes
them and answers with a stream of ``EngineOutput`` values.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import NewType, Protocol

RequestId = NewType("RequestId", str)
"""Caller-chosen (or server-assigned) id, unique among requests in flight."""

TokenId = NewType("TokenId", int)


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How the next token is chosen. ``None`` means the engine default.

    ``temperature == 0`` means greedy decoding; all other fields are then ignored
    except the penalties, which still reshape the logits.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: tuple[tuple[TokenId, float], ...] = ()
    """(token, bias) pairs, bias in [-100, 100], added to the logits after the penalties; -100 bans
    the token outright."""


@dataclass(frozen=True, slots=True)
class StoppingParams:
    """When the engine stops generating. Stop *strings* are handled above the engine."""

    max_tokens: int
    min_tokens: int = 0
    stop_token_ids: tuple[TokenId, ...] = ()
    ignore_eos: bool = False


class SpeculationMethod(enum.Enum):
    """Which drafter proposes tokens for the target model to verify."""

    OFF = "off"
    """One token per target step."""
    NGRAM = "ngram"
    """Prompt lookup: the tokens that followed an earlier occurrence of the last few tokens."""
    EAGLE3 = "eagle3"
    """An EAGLE-3 draft head reading the target's hidden states (needs trained head weights)."""


MAX_DRAFT_LENGTH = 16
"""Most draft tokens one speculative step may propose: the API's limit, and every engine's."""


@dataclass(frozen=True, slots=True)
class SpeculationParams:
    """Speculative decoding for one request. It never changes what is generated
    (greedy: identical tokens; sampled: the same distribution), only how many
    tokens each target step yields."""

    method: SpeculationMethod
    draft_length: int
    """Most draft tokens proposed per step (at least 1; ignored when ``method`` is OFF)."""


class StructuredOutputKind(enum.Enum):
    """The kinds of format a request may constrain its output to."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    REGEX = "regex"
    GRAMMAR_LARK = "grammar_lark"
    GRAMMAR_GBNF = "grammar_gbnf"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class StructuredOutput:
    """A format the output must follow."""

    kind: StructuredOutputKind
    text: str = ""
    """The JSON Schema, regex or grammar text; empty for JSON_OBJECT and CHOICE."""
    choices: tuple[str, ...] = ()
    """For CHOICE: the allowed outputs."""


class InvalidStructuredOutput(ValueError):
    """A structured-output format that does not compile; the message is the compiler's reason."""


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """One generation, fully validated: the engine may trust every field."""

    request_id: RequestId
    prompt_token_ids: tuple[TokenId, ...]
    sampling: SamplingParams
    stopping: StoppingParams
    logprobs: bool = False
    """Report the log-probability of each sampled token."""
    top_logprobs: int = 0
    """With ``logprobs``: also report this many most likely candidates per position."""
    speculation: SpeculationParams | None = None
    """Speculative decoding for this request; None: the engine's default."""
    structured_output: StructuredOutput | None = None
    """The format the output must follow (one of ``EngineInfo.structured_output_kinds``, already
    accepted by ``Engine.compile_structured_output``); None: free text."""


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token_id: TokenId
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """Log-probability of one sampled token, from the distribution it was sampled from
    (after penalties and temperature, before top-k/top-p/min-p truncation)."""

    token_id: TokenId
    logprob: float
    top: tuple[TopLogprob, ...] = ()


class FinishReason(enum.Enum):
    """Why an engine stopped a request."""

    END_OF_SEQUENCE = "end_of_sequence"
    LENGTH = "length"
    """``max_tokens`` reached, or the context window is full."""
    STOP_TOKEN = "stop_token"
    CANCELLED = "cancelled"
    STRUCTURED_OUTPUT_COMPLETE = "structured_output_complete"
    """The request's format allows nothing more."""


@dataclass(frozen=True, slots=True)
class FinishStats:
    """Facts about a finished request that only the engine knows."""

    queued_s: float
    """Seconds from submission until the engine started the prompt's forward pass."""
    cached_prompt_tokens: int = 0
    draft_tokens: int = 0
    """Tokens proposed by a speculative drafter (0 without speculation)."""
    accepted_draft_tokens: int = 0
    """Draft tokens the target accepted. Each step yields its accepted drafts plus one
    token of the target's own, so output tokens == accepted + decode_steps, less one
    when a stop token or end-of-sequence (never part of the output) ended the request."""
    decode_steps: int = 0
    """Target-model forward passes that produced output tokens (the prompt's last
    chunk counts: it yields the first token)."""


@dataclass(slots=True)
class EngineOutput:
    """New tokens of one request since its previous output (never cumulative).

    Several tokens may arrive at once (speculation, or a consumer that read
    slowly and had its pending tokens coalesced). The last output of a request
    has ``finish_reason`` and ``stats`` set.

    A value: never change one once made. Not frozen, on purpose: an engine makes one for
    every request at every step, and a frozen dataclass costs 3.4x as much to build
    (1.26 vs 0.37 µs, measured on the Intel machine, 2026-11-30).
    """

    token_ids: tuple[TokenId, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    stop_token_id: TokenId | None = None
    """With ``FinishReason.STOP_TOKEN``: the token that matched (not part of ``token_ids``)."""
    stats: FinishStats | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class SpeculativeConfig:
    """How an engine speculates by default; ``method`` is OFF when it does not."""

    method: SpeculationMethod = SpeculationMethod.OFF
    draft_length: int = 0
    available_methods: tuple[SpeculationMethod, ...] = ()
    """Methods a request may choose, OFF included where it is allowed; empty when the engine takes
    no choice from requests (the sim engine, whose steps only imitate speculation)."""
    draft_model: str = ""
    """What drafts, when it is a model: its name and the sha256 of its weights."""
    simulated: bool = False
    """The engine imitates ``method``'s step sizes without drafting (the sim engine)."""

    @property
    def name(self) -> str:
        """The method as GetModelInfo and the metrics name it: "" when off, ``eagle3-simulated``
        for a simulation of EAGLE-3."""
        if self.method is SpeculationMethod.OFF:
            return ""
        return f"{self.method.value}-simulated" if self.simulated else self.method.value


@dataclass(frozen=True, slots=True)
class UnsupportedField:
    """A GenerateRequest field the engine, as configured, would not honour.

    The service refuses a request that sets it (to anything but ``allowed``)
    with INVALID_ARGUMENT naming the field and ``reason``, instead of letting
    the engine drop it silently.
    """

    field: str
    """The field's path in GenerateRequest, e.g. "sampling.repetition_penalty"."""
    reason: str
    """Why, e.g. "ignored by TensorRT-LLM 1.2.1's TorchSampler (applied from 1.3.0rc24, PR #16485)"."""
    allowed: float | None = None
    """The one value still accepted (the one that changes nothing, e.g. 1.0 for a penalty), if any."""


OPTIONAL_REQUEST_FIELDS = (
    "sampling.temperature",
    "sampling.top_p",
    "sampling.top_k",
    "sampling.min_p",
    "sampling.seed",
    "sampling.repetition_penalty",
    "sampling.presence_penalty",
    "sampling.frequency_penalty",
    "sampling.logit_bias",
    "stopping.min_tokens",
    "stopping.stop",
    "stopping.stop_token_ids",
    "stopping.ignore_eos",
    "output.logprobs",
    "output.top_logprobs",
    "speculative.method",
    "speculative.draft_length",
)
"""The GenerateRequest fields that change how a generation runs and that an engine may not support."""


@dataclass(frozen=True, slots=True)
class EngineInfo:
    model_name: str
    engine_name: str
    context_length: int
    vocab_size: int
    max_batch_size: int
    speculative: SpeculativeConfig = field(default_factory=SpeculativeConfig)
    unsupported_fields: tuple[UnsupportedField, ...] = ()
    """Request fields this engine, as configured, does not honour; every other field is honoured."""
    structured_output_kinds: tuple[StructuredOutputKind, ...] = ()
    """The structured-output formats it can follow (none: it refuses structured output)."""


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """A snapshot of the engine's occupancy."""

    active_requests: int
    """Requests holding a batch slot (prefilling or decoding)."""
    waiting_requests: int
    """Requests submitted but not yet given a slot."""
    kv_cache_bytes_used: int = 0
    """KV-cache memory reserved by the requests holding slots (0 where the engine does not say)."""
    kv_cache_bytes_capacity: int = 0
    """The KV cache's memory budget (0 where the engine does not say)."""


class EngineError(Exception):
    """An engine failed a request for a reason of its own (not the caller's input)."""


class EngineOverloaded(EngineError):
    """The engine's queue is full; the caller should retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Tokenizer(Protocol):
    """The model's own tokenizer and chat template."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_token_ids(self) -> frozenset[TokenId]: ...

    @property
    def has_chat_template(self) -> bool: ...

    @property
    def max_token_bytes(self) -> int:
        """The most UTF-8 bytes of text one token stands for (at least 1): text of ``n`` bytes
        tokenizes to at least ``n / max_token_bytes`` tokens, so size checks need no tokenizing."""
        ...

    @property
    def byte_pieces(self) -> Sequence[bytes] | None:
        """Each id's bytes, when ``decode(ids)`` is exactly the UTF-8 decoding (invalid bytes as
        U+FFFD) of the concatenation of its ids' pieces, special tokens being b"" (byte-level BPE,
        checked: ``engines.byte_level``); None for any other tokenizer. Incremental
        detokenization then needs no ``decode`` calls."""
        ...

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[TokenId]:
        """Token ids of ``text``; ``add_special_tokens`` adds BOS where the model wants it."""
        ...

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``token_ids``. Incomplete UTF-8 at the end decodes to U+FFFD."""
        ...

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` in the model's own chat template.

        Raises ``ValueError`` if the model has no chat template or the template
        rejects the messages.
        """
        ...


class Engine(Protocol):
    """What the service needs from an inference engine.

    Lifecycle: ``start`` (may take long: loads weights), then any number of
    ``generate`` calls, then ``shutdown``. ``info`` and ``tokenizer`` are valid
    only after ``start`` returned.
    """

    @property
    def info(self) -> EngineInfo: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    async def start(self) -> None: ...

    async def shutdown(self) -> None:
        """Stop the engine; requests still running end with ``FinishReason.CANCELLED``."""
        ...

    def generate(self, request: EngineRequest) -> AsyncGenerator[EngineOutput, None]:
        """Submit ``request`` now and return the stream of its outputs.

        Submission happens in this call, not at the first iteration, so that
        ``EngineOverloaded`` is raised here, before the caller has told its
        client the request was accepted. The stream ends right after the
        output that carries ``finish_reason``. Closing it early (``aclose``,
        or cancelling the task that iterates it) cancels the request and
        frees its slot.
        """
        ...

    def compile_structured_output(self, spec: StructuredOutput) -> None:
        """Compile ``spec`` for this engine, or find it compiled; raises ``InvalidStructuredOutput``
        with the compiler's reason. CPU-heavy on a cache miss: the service calls it off the event
        loop, before it accepts a request that carries ``spec``. Only called for kinds in
        ``info.structured_output_kinds``."""
        ...

    def cancel(self, request_id: RequestId) -> None:
        """Cancel a request; a no-op for unknown or finished ids. Never blocks."""
        ...

    def load(self) -> EngineLoad: ...
