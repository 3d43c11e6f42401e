"""Request bytes that do not decode end their call INVALID_ARGUMENT, not UNKNOWN.

grpc.aio decodes each request message before any servicer runs; a
``DecodeError`` there (bad UTF-8 in a string field, a truncated message) is
answered UNKNOWN with the parser's text. ``service.interceptor`` gives every
method a deserializer that never raises (``never_raising``): what does not
decode becomes an ``Undecodable`` value, and the call ends with
INVALID_ARGUMENT and a BadRequest violation instead (for a request stream:
``checked_requests``, when that message is reached, after the ones before it
were handled).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from service.errors import FieldViolation, InvalidArgument, abort, clip
from service.handlers import Context


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request message that did not decode, and why."""

    reason: str

    def error(self) -> InvalidArgument:
        violation = FieldViolation("request", f"the message could not be decoded: {clip(self.reason, 200)}")
        return InvalidArgument([violation])


def never_raising(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserialize`` answering ``Undecodable`` instead of raising ``DecodeError``."""
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as error:
            return Undecodable(str(error))

    return decode


async def checked_requests(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    """A request stream that ends the call INVALID_ARGUMENT when it reaches an ``Undecodable``."""
    async for request in requests:
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        yield request
