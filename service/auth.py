"""Bearer-token authentication: which token may call which service.

Tokens come from ``--auth-tokens-file`` and/or the environment variable named
by ``--auth-tokens-env``, one entry each::

    <token or sha256:<64 lowercase hex>> [<rights>]

``rights`` is a comma-separated subset of ``generate``, ``model``, ``health``,
``reflection``, or ``all`` (the default). Only SHA-256 digests are kept. A
caller sends ``authorization: Bearer <token>``; its digest is compared with
every stored digest by ``hmac.compare_digest`` (no early exit), so the time
taken does not depend on which token, if any, matches. Neither tokens nor
anything read from a token line is ever logged or echoed in errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import string
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import structlog
from grpc import aio
from grpc_health.v1 import health
from tokenwire.v1 import generation_pb2, model_pb2

from service.config import ConfigError, OpenServiceName, ServeConfig
from service.errors import PermissionDenied, ServiceError, Unauthenticated, abort
from service.logs import RateLimiter
from service.orca import ORCA_SERVICE
from service.reflection import V1_SERVICE, V1ALPHA_SERVICE

log = structlog.get_logger(__name__)

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

MAX_TOKEN_BYTES = 4096
"""Presented tokens longer than this are refused unhashed; configured ones are refused at start-up."""
REFUSAL_READ_WAIT_S = 1.0
"""How long a refused streaming call waits for the caller's first message before its status is sent."""
MAX_ENTRIES_BYTES = 1 << 20
"""The most a tokens file or variable may hold."""
_SHA256_PREFIX = "sha256:"
_HEX = frozenset("0123456789abcdef")
_PRINTABLE = frozenset(string.printable) - frozenset(string.whitespace)
"""What a token may contain: gRPC metadata values are printable ASCII, and whitespace separates fields."""


class Right(enum.Enum):
    """What a token may call, one right per service."""

    GENERATE = "generate"
    MODEL = "model"
    HEALTH = "health"
    REFLECTION = "reflection"


ALL_RIGHTS = frozenset(Right)
SERVICE_RIGHTS: Mapping[str, Right] = {
    generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name: Right.GENERATE,
    model_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name: Right.MODEL,
    health.SERVICE_NAME: Right.HEALTH,
    V1_SERVICE: Right.REFLECTION,
    V1ALPHA_SERVICE: Right.REFLECTION,
    ORCA_SERVICE: Right.MODEL,  # the same load figures as ModelService.GetLoad
}
"""The right each served service needs; a service not listed needs a valid token and no right."""
_OPEN_RIGHTS: Mapping[OpenServiceName, Right] = {"health": Right.HEALTH, "reflection": Right.REFLECTION}


@dataclass(frozen=True, slots=True)
class TokenEntry:
    digest: bytes
    """SHA-256 of the token's UTF-8 bytes."""
    rights: frozenset[Right]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _parse_rights(field: str | None, where: str) -> frozenset[Right]:
    if field is None:
        return ALL_RIGHTS
    rights: set[Right] = set()
    for name in field.split(","):
        if name == "all":
            rights |= ALL_RIGHTS
            continue
        try:
            rights.add(Right(name))
        except ValueError:
            # Not echoed: a mistyped line may have a token here.
            raise ConfigError(
                f"{where}: unknown right (expected a comma-separated list of "
                f"{', '.join(r.value for r in Right)} or all)"
            ) from None
    return frozenset(rights)


def _parse_credential(field: str, where: str) -> bytes:
    if field.startswith(_SHA256_PREFIX):
        hex_digest = field.removeprefix(_SHA256_PREFIX)
        if len(hex_digest) != 64 or not set(hex_digest) <= _HEX:
            raise ConfigError(f"{where}: a sha256: credential needs 64 lowercase hex digits")
        return bytes.fromhex(hex_digest)
    if not set(field) <= _PRINTABLE:
        raise ConfigError(f"{where}: a token must be printable ASCII (gRPC metadata cannot carry others)")
    if len(field) > MAX_TOKEN_BYTES:
        raise ConfigError(f"{where}: a token may have at most {MAX_TOKEN_BYTES} characters")
    return token_digest(field)


def parse_entries(text: str, source: str, *, split_semicolons: bool = False) -> tuple[TokenEntry, ...]:
    """The entries in ``text``; ``ConfigError`` names ``source`` and the line (or entry) number."""
    if len(text) > MAX_ENTRIES_BYTES:
        raise ConfigError(f"{source}: more than {MAX_ENTRIES_BYTES} bytes of token entries")
    unit = "entry" if split_semicolons else "line"
    lines = text.splitlines()
    pieces = [piece for line in lines for piece in line.split(";")] if split_semicolons else lines
    entries: list[TokenEntry] = []
    for number, piece in enumerate(pieces, start=1):
        line = piece.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} {unit} {number}"
        fields = line.split()
        if len(fields) > 2:
            raise ConfigError(f"{where}: expected '<token> [rights]' (a token cannot contain whitespace)")
        digest = _parse_credential(fields[0], where)
        entries.append(TokenEntry(digest, _parse_rights(fields[1] if len(fields) == 2 else None, where)))
    if not entries:
        raise ConfigError(f"{source}: no token entries")
    return tuple(entries)


def load_entries(config: ServeConfig, environ: Mapping[str, str]) -> tuple[TokenEntry, ...]:
    """Every entry from the configured file and variable; empty when token auth is off."""
    entries: list[TokenEntry] = []
    if config.auth_tokens_file is not None:
        source = f"--auth-tokens-file {config.auth_tokens_file}"
        try:
            with config.auth_tokens_file.open("rb") as file:
                raw = file.read(MAX_ENTRIES_BYTES + 1)
        except OSError as error:
            raise ConfigError(f"{source}: cannot read ({error.strerror})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: not UTF-8 text") from None
        entries.extend(parse_entries(text, source))
    if config.auth_tokens_env is not None:
        source = f"--auth-tokens-env {config.auth_tokens_env}"
        value = environ.get(config.auth_tokens_env)
        if value is None:
            raise ConfigError(f"{source}: the environment variable is not set")
        entries.extend(parse_entries(value, source, split_semicolons=True))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    entries: tuple[TokenEntry, ...]
    open_rights: frozenset[Right]
    """Services anyone may call, token or not."""

    def authorize(
        self, metadata: Sequence[tuple[str, str | bytes]], right: Right | None
    ) -> ServiceError | None:
        """None if a call with ``metadata`` may use a service needing ``right``; else the error to end it.

        ``right`` None: a service nobody was granted (unknown ones): any valid token passes.
        """
        if right is not None and right in self.open_rights:
            return None
        values = [value for key, value in metadata if key == "authorization"]
        if not values:
            return Unauthenticated("missing bearer token: send metadata 'authorization: Bearer <token>'")
        if len(values) > 1:
            return Unauthenticated("more than one authorization header")
        value = values[0]
        if not isinstance(value, str) or len(value) > MAX_TOKEN_BYTES + len("Bearer "):
            return Unauthenticated("malformed authorization header")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Unauthenticated("authorization header is not 'Bearer <token>'")
        presented = token_digest(token)
        granted: set[Right] = set()
        known = False
        for entry in self.entries:  # every entry, always: no early exit
            if hmac.compare_digest(presented, entry.digest):
                known = True
                granted |= entry.rights
        if not known:
            return Unauthenticated("unknown bearer token")
        if right is not None and right not in granted:
            return PermissionDenied(f"this token lacks the '{right.value}' right this service needs")
        return None


def load_policy(config: ServeConfig, environ: Mapping[str, str]) -> TokenPolicy | None:
    """The token policy ``config`` asks for; None when token auth is off."""
    entries = load_entries(config, environ)
    if not entries:
        return None
    return TokenPolicy(entries, frozenset(_OPEN_RIGHTS[name] for name in config.auth_open))


def _service_of(method: str) -> str:
    """``/pkg.Service/Method`` -> ``pkg.Service``."""
    return method.lstrip("/").partition("/")[0]


def refusing_handler(
    handler: grpc.RpcMethodHandler[RequestT, ResponseT] | None, error: ServiceError
) -> grpc.RpcMethodHandler[RequestT, ResponseT]:
    """A handler of ``handler``'s kind that ends the call with ``error``.

    No request deserializer: a refused caller's bytes are never parsed. An unknown
    method gets a streaming handler, which needs no request message before it answers.
    """

    async def refuse(_request: object, context: aio.ServicerContext[RequestT, ResponseT]) -> None:
        await abort(context, error)

    async def refuse_stream(
        requests: AsyncIterator[bytes], context: aio.ServicerContext[RequestT, ResponseT]
    ) -> None:
        # A client that writes first (Session: start, then read) and finds the call already ended
        # sees its own write fail (grpc.aio: INTERNAL) rather than this status: wait, briefly, for
        # its first message, which is then discarded unread.
        with contextlib.suppress(TimeoutError, StopAsyncIteration):
            await asyncio.wait_for(anext(aiter(requests)), timeout=REFUSAL_READ_WAIT_S)
        await abort(context, error)

    request_streaming = handler is None or handler.request_streaming
    response_streaming = handler is None or handler.response_streaming
    match request_streaming, response_streaming:
        case False, False:
            return grpc.unary_unary_rpc_method_handler(refuse)
        case False, True:
            return grpc.unary_stream_rpc_method_handler(refuse)
        case True, False:
            return grpc.stream_unary_rpc_method_handler(refuse_stream)
        case _:
            return grpc.stream_stream_rpc_method_handler(refuse_stream)


class TokenAuth:
    """Decides, from a call's metadata, whether the policy refuses it; logs refusals, rate-limited."""

    def __init__(self, policy: TokenPolicy) -> None:
        self._policy = policy
        self._log_limit = RateLimiter()

    def refusal(self, details: grpc.HandlerCallDetails) -> ServiceError | None:
        """The error that ends the call, or None when the policy lets it through."""
        right = SERVICE_RIGHTS.get(_service_of(details.method))
        error = self._policy.authorize(details.invocation_metadata, right)
        if error is None:
            return None
        held_back = self._log_limit.allow(error.message)
        if held_back is not None:
            # The method path is the caller's string: only the known service's right is logged.
            log.info(
                "auth_rejected",
                code=error.code.name,
                reason=error.message,
                right=right.value if right is not None else None,
                held_back=held_back,
            )
        return error
