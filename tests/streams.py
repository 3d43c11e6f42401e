"""Helpers that read tokenwire.v1 streams the way a careful client would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status
from tokenwire.v1 import generation_pb2, model_pb2, model_pb2_grpc


@dataclass
class Generation:
    """Everything one generation streamed, checked for the streaming contract as it arrives."""

    started: generation_pb2.Started | None = None
    deltas: list[generation_pb2.Delta] = field(default_factory=list)
    finished: generation_pb2.Finished | None = None
    error: status_pb2.Status | None = None

    def add(
        self, event: str, message: generation_pb2.GenerateResponse | generation_pb2.SessionResponse
    ) -> None:
        assert self.finished is None and self.error is None, "event after the final event"
        match event:
            case "started":
                assert self.started is None, "two started events"
                self.started = message.started
            case "delta":
                assert self.started is not None, "delta before started"
                self.deltas.append(message.delta)
            case "finished":
                assert self.started is not None, "finished before started"
                self.finished = message.finished
            case "error":
                assert isinstance(message, generation_pb2.SessionResponse)
                self.error = message.error
            case other:
                raise AssertionError(f"unexpected event {other}")

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)

    @property
    def token_ids(self) -> list[int]:
        return [t for d in self.deltas for t in d.token_ids]

    @property
    def reason(self) -> int:
        assert self.finished is not None, "generation did not finish"
        return self.finished.reason


def from_responses(responses: list[generation_pb2.GenerateResponse]) -> Generation:
    """Check a whole Generate stream: one id, started first, exactly one finished last."""
    result = Generation()
    assert responses, "empty stream"
    assert len({r.request_id for r in responses}) == 1, "request_id changed mid-stream"
    for response in responses:
        event = response.WhichOneof("event")
        assert event is not None
        result.add(event, response)
    assert result.finished is not None, "stream ended without a finished event"
    return result


async def collect(stream: AsyncIterable[generation_pb2.GenerateResponse]) -> Generation:
    """Read a Generate stream to its end."""
    return from_responses([response async for response in stream])


def bad_request(error: aio.AioRpcError) -> dict[str, str]:
    """The field violations of an INVALID_ARGUMENT error, by field."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError carries the same trailing metadata as grpc.Call
    assert status is not None, "no rich status details"
    return violations_of(status)


def violations_of(status: status_pb2.Status) -> dict[str, str]:
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    for detail in status.details:
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            return {v.field: v.description for v in request.field_violations}
    raise AssertionError("no google.rpc.BadRequest detail")


async def room_left(model: model_pb2_grpc.ModelServiceAsyncStub, text: str) -> int:
    """The most tokens a generation from ``text`` may produce: the rest of the context.

    Cancellation tests ask for this much with ``ignore_eos``: finishing on its own takes
    thousands of steps (minutes on a CPU), far longer than ``wait_until_idle`` waits, so a
    server seen idle in time was idle because cancellation freed the slot.
    """
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    prompt = await model.Tokenize(model_pb2.TokenizeRequest(text=text))
    return info.context_length - len(prompt.token_ids)


async def wait_until_idle(model: model_pb2_grpc.ModelServiceAsyncStub, timeout_s: float = 30.0) -> None:
    """Poll GetLoad until no request holds or waits for an engine slot (bounded)."""
    async with asyncio.timeout(timeout_s):
        while True:
            load = await model.GetLoad(model_pb2.GetLoadRequest())
            if load.active_requests == 0 and load.waiting_requests == 0 and load.in_flight_requests == 0:
                return
            await asyncio.sleep(0.02)


async def read_generate(
    call: aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse],
) -> generation_pb2.GenerateResponse:
    """The next event of a Generate call; fails if the stream ended."""
    response = await call.read()
    assert isinstance(response, generation_pb2.GenerateResponse), "stream ended"
    return response


async def read_session(
    call: aio.StreamStreamCall[generation_pb2.SessionRequest, generation_pb2.SessionResponse],
) -> generation_pb2.SessionResponse:
    """The next event of a Session call; fails if the stream ended."""
    response = await call.read()
    assert isinstance(response, generation_pb2.SessionResponse), "stream ended"
    return response


async def rest_of_generate(
    call: aio.UnaryStreamCall[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse],
) -> list[generation_pb2.GenerateResponse]:
    """The remaining events of a Generate call already read with ``read()`` (gRPC forbids mixing styles)."""
    responses = []
    while isinstance(response := await call.read(), generation_pb2.GenerateResponse):
        responses.append(response)
    return responses


async def rest_of_session(
    call: aio.StreamStreamCall[generation_pb2.SessionRequest, generation_pb2.SessionResponse],
) -> list[generation_pb2.SessionResponse]:
    """The remaining events of a Session call (read with ``read()``, as its writes use ``write()``)."""
    responses = []
    while isinstance(response := await call.read(), generation_pb2.SessionResponse):
        responses.append(response)
    return responses
