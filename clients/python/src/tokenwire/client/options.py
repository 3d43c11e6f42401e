"""Client settings (TLS, retries) and how call arguments become a ``GenerateRequest``."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

import grpc
from google.protobuf import duration_pb2

from tokenwire.client.errors import TokenwireError
from tokenwire.v1 import generation_pb2


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS for the channel (PEM bytes). Leave everything unset to trust the system roots.

    ``certificate_chain`` and ``private_key`` (both or neither) authenticate the
    client (mTLS). ``server_name`` overrides the name the server's certificate
    is checked against (and the ``:authority``), e.g. when dialing an IP.
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("TlsOptions: certificate_chain and private_key go together (mTLS)")

    @classmethod
    def from_files(
        cls,
        root_certificates: str | Path | None = None,
        certificate_chain: str | Path | None = None,
        private_key: str | Path | None = None,
        server_name: str | None = None,
    ) -> TlsOptions:
        """Read the PEM files named (any may be None)."""

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(root_certificates), read(certificate_chain), read(private_key), server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def channel_options(self) -> list[tuple[str, str]]:
        if self.server_name is None:
            return []
        return [
            ("grpc.ssl_target_name_override", self.server_name),
            ("grpc.default_authority", self.server_name),
        ]


_TOKEN_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F))
"""Printable ASCII without spaces: what a gRPC metadata value can carry after ``Bearer ``."""


def bearer_metadata(token: str) -> tuple[str, str]:
    """The ``authorization: Bearer <token>`` metadata entry a tokenwire server with token auth expects."""
    if not token or not set(token) <= _TOKEN_CHARACTERS:
        raise ValueError("a bearer token must be non-empty printable ASCII without whitespace")
    return ("authorization", f"Bearer {token}")


RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before retrying a call that failed with a retryable code.

    A call is retried only while nothing of it was received (a Generate stream
    that delivered an event, or a Session generation that started, is never
    replayed), at most ``max_attempts`` attempts in all, and never past the
    call's deadline. The wait is the server's ``google.rpc.RetryInfo`` delay
    when it sent one (a delay above ``max_retry_info_delay_s`` is not waited
    for: the error is raised); otherwise exponential backoff with "equal
    jitter": attempt n waits uniformly between b/2 and b, where
    b = min(max_backoff_s, initial_backoff_s * multiplier**(n-1)).
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    max_retry_info_delay_s: float = 30.0
    retryable_codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy: backoffs must be >= 0 and multiplier >= 1")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The jittered wait after failed attempt number ``attempt`` (1-based), without RetryInfo."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay_s(self, attempt: int, error: TokenwireError, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when ``error`` must be raised."""
        if error.code not in self.retryable_codes or attempt >= self.max_attempts:
            return None
        if error.retry_delay is not None:
            if error.retry_delay > self.max_retry_info_delay_s or not math.isfinite(error.retry_delay):
                return None
            return max(0.0, error.retry_delay)
        return self.backoff_s(attempt, rng)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat prompt: role is "system", "user", "assistant" or "tool"."""

    role: str
    content: str


def user(content: str) -> ChatMessage:
    return ChatMessage("user", content)


def system(content: str) -> ChatMessage:
    return ChatMessage("system", content)


def assistant(content: str) -> ChatMessage:
    return ChatMessage("assistant", content)


Prompt = str | Sequence[int] | Sequence[ChatMessage]
"""A text prompt, token ids (used as is), or a conversation (rendered with the model's chat template)."""


class GenerateOptions(TypedDict, total=False):
    """Keyword options of every generation call; absent ones take the server/engine defaults."""

    # sampling
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    seed: int
    repetition_penalty: float
    presence_penalty: float
    frequency_penalty: float
    # stopping
    max_tokens: int
    min_tokens: int
    stop: Sequence[str]
    stop_token_ids: Sequence[int]
    ignore_eos: bool
    # output
    include_token_ids: bool
    include_text: bool
    logprobs: bool
    top_logprobs: int
    # speculative decoding
    speculation: Literal["off", "ngram", "eagle3"]
    """Drafter for this generation; absent: the server's default (see ``ModelInfo``)."""
    draft_length: int
    """Most draft tokens per step (1..16); absent: the server's default."""
    time_limit_s: float
    """Server-side limit for this generation: when it passes, the generation ends with
    ``FinishReason.DEADLINE`` keeping its partial output (unlike ``timeout``, which fails the call)."""
    logit_bias: Mapping[int, float]
    """Token id -> bias in [-100, 100] added to its logit; -100 bans it, +100 forces it."""
    n: int
    """Samples of this prompt (1 to ``ModelInfo.max_samples``): each ``Delta`` and ``Finished``
    carries its ``sample_index``; collect them with ``collect_samples`` / ``complete_samples``."""
    # structured output: at most one of these
    json_schema: str | Mapping[str, object]
    """The output is JSON valid against this JSON Schema (a dict is serialized for you)."""
    json_object: bool
    """The output is a JSON object."""
    regex: str
    """The whole output matches this regex (Rust regex syntax)."""
    lark_grammar: str
    """The output follows this grammar (Lark, as llguidance reads it; ``start`` is the start rule)."""
    gbnf_grammar: str
    """The output follows this grammar (llama.cpp's GBNF; ``root`` is the start rule)."""
    choice: Sequence[str]
    """The output is exactly one of these strings."""


STRUCTURED_OPTIONS = ("json_schema", "json_object", "regex", "lark_grammar", "gbnf_grammar", "choice")


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=min(999_999_999, round((seconds - whole) * 1e9)))


def build_request(
    prompt: Prompt, request_id: str | None, options: GenerateOptions
) -> generation_pb2.GenerateRequest:
    """The ``GenerateRequest`` for a prompt and options (validation is the server's job)."""
    request = generation_pb2.GenerateRequest(request_id=request_id or "")
    if isinstance(prompt, str):
        request.text = prompt
    elif all(isinstance(item, ChatMessage) for item in prompt) and len(prompt) > 0:
        request.chat.messages.extend(
            generation_pb2.ChatMessage(role=m.role, content=m.content)
            for m in prompt
            if isinstance(m, ChatMessage)
        )
    elif all(isinstance(item, int) for item in prompt):
        request.token_ids.ids.extend(int(i) for i in prompt if isinstance(i, int))
        request.token_ids.SetInParent()
    else:
        raise TypeError("prompt must be a str, a sequence of token ids, or a sequence of ChatMessage")
    sampling = request.sampling
    if "temperature" in options:
        sampling.temperature = options["temperature"]
    if "top_p" in options:
        sampling.top_p = options["top_p"]
    if "top_k" in options:
        sampling.top_k = options["top_k"]
    if "min_p" in options:
        sampling.min_p = options["min_p"]
    if "seed" in options:
        sampling.seed = options["seed"]
    if "repetition_penalty" in options:
        sampling.repetition_penalty = options["repetition_penalty"]
    if "presence_penalty" in options:
        sampling.presence_penalty = options["presence_penalty"]
    if "frequency_penalty" in options:
        sampling.frequency_penalty = options["frequency_penalty"]
    if "max_tokens" in options:
        request.stopping.max_tokens = options["max_tokens"]
    if "min_tokens" in options:
        request.stopping.min_tokens = options["min_tokens"]
    request.stopping.stop.extend(options.get("stop", ()))
    request.stopping.stop_token_ids.extend(options.get("stop_token_ids", ()))
    request.stopping.ignore_eos = options.get("ignore_eos", False)
    if "include_token_ids" in options:
        request.output.token_ids = options["include_token_ids"]
    if "include_text" in options:
        request.output.text = options["include_text"]
    request.output.logprobs = options.get("logprobs", False)
    request.output.top_logprobs = options.get("top_logprobs", 0)
    if "speculation" in options:
        request.speculative.method = _SPECULATION_METHODS[options["speculation"]]
    if "draft_length" in options:
        request.speculative.draft_length = options["draft_length"]
    if "time_limit_s" in options:
        request.timeout.CopyFrom(_duration(options["time_limit_s"]))
    for token, bias in options.get("logit_bias", {}).items():
        sampling.logit_bias[token] = bias
    if "n" in options:
        request.n = options["n"]
    _structured_output(request.structured_output, options)
    return request


def _structured_output(message: generation_pb2.StructuredOutput, options: GenerateOptions) -> None:
    chosen = [name for name in STRUCTURED_OPTIONS if name in options and options[name] is not False]  # type: ignore[literal-required]  # the names are GenerateOptions keys
    if len(chosen) > 1:
        raise ValueError(f"structured output: set one of {', '.join(STRUCTURED_OPTIONS)}; got {chosen}")
    if "json_schema" in options:
        schema = options["json_schema"]
        message.json_schema = schema if isinstance(schema, str) else json.dumps(schema)
    elif options.get("json_object", False):
        message.json_object.SetInParent()
    elif "regex" in options:
        message.regex = options["regex"]
    elif "lark_grammar" in options:
        message.grammar.syntax = generation_pb2.Grammar.SYNTAX_LARK
        message.grammar.text = options["lark_grammar"]
    elif "gbnf_grammar" in options:
        message.grammar.syntax = generation_pb2.Grammar.SYNTAX_GBNF
        message.grammar.text = options["gbnf_grammar"]
    elif "choice" in options:
        message.choice.options.extend(options["choice"])


_SPECULATION_METHODS = {
    "off": generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_OFF,
    "ngram": generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_NGRAM,
    "eagle3": generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_EAGLE3,
}
