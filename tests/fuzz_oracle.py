"""What a correct answer to any request is, checked against a live server.

For every case: the call ends OK with a well-formed stream and one ``finished``
event, or with a clean error status (INVALID_ARGUMENT with its BadRequest,
ALREADY_EXISTS, RESOURCE_EXHAUSTED with RetryInfo, or the transport's own
RESOURCE_EXHAUSTED for a message past gRPC's 4 MiB limit); never INTERNAL,
UNKNOWN, a reset or a hang. On a Session, every ``start`` gets exactly one
terminal event (``finished`` or ``error``) for its id. Afterwards the engine
holds no request (no leaked slots) and health still says SERVING.

A case that is still running after ``patience_s`` is cancelled the way a
client would (Abort, or a Session cancel of every id), so long valid
generations stay cheap and the cancel paths are fuzzed too.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from tokenwire.v1 import generation_pb2 as pb
from tokenwire.v1 import model_pb2

from tests.fuzz_requests import Behaviour, GenerateCall, RawCall, SessionCase, describe
from tests.streams import from_responses
from tests.stubs import GenerationStub, ModelStub

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""gRPC's default limit on a received message, on the server and in this client."""
BACKSTOP_S = 60.0
"""A case still not over this long after it started (or was cancelled) has hung."""
IDLE_WAIT_S = 20.0
"""How long a finished case may take to give its engine slot back."""
CLEAN_ERRORS = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
KNOWN_REASONS = frozenset(range(1, len(pb.FinishReason.values())))
DetailT = TypeVar(
    "DetailT", error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo
)
HealthCheck = aio.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]


@dataclass(slots=True)
class Tally:
    """What the cases ended with, for the summary printed after a run."""

    outcomes: Counter[str] = field(default_factory=Counter)
    requests: int = 0


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """A live server as the fuzzer sees it; its stubs belong to the loop that runs the cases."""

    generation: GenerationStub
    model: ModelStub
    health: HealthCheck
    channel: aio.Channel
    patience_s: float
    tally: Tally


class Violation(AssertionError):
    """The server answered a case in a way the contract forbids."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Violation(message)


def _unpacked(status: status_pb2.Status, message_type: type[DetailT]) -> list[DetailT]:
    found = []
    for detail in status.details:
        message = message_type()
        if detail.Unpack(message):
            found.append(message)
    return found


def check_status(status: status_pb2.Status, *, where: str) -> None:
    """A non-OK ``google.rpc.Status`` the contract allows, with the details its code promises."""
    code = grpc.StatusCode.OK
    for candidate in grpc.StatusCode:
        if candidate.value[0] == status.code:
            code = candidate
    _require(code in CLEAN_ERRORS, f"{where}: {code.name}: {status.message[:300]!r}")
    infos = _unpacked(status, error_details_pb2.ErrorInfo)
    bad_requests = _unpacked(status, error_details_pb2.BadRequest)
    retries = _unpacked(status, error_details_pb2.RetryInfo)
    _require(len(infos) == 1, f"{where}: {code.name} without one google.rpc.ErrorInfo")
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        _require(
            len(bad_requests) == 1 and bool(bad_requests[0].field_violations),
            f"{where}: INVALID_ARGUMENT without field violations",
        )
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        _require(len(retries) == 1, f"{where}: RESOURCE_EXHAUSTED without google.rpc.RetryInfo")


def check_call_error(error: aio.AioRpcError, *, sent_bytes: int, where: str) -> None:
    """A failed call's status: the transport's size limit for an oversized message, or a clean error."""
    code, details = error.code(), error.details() or ""
    if sent_bytes > MAX_MESSAGE_BYTES and code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return  # the transport refused the message before the service saw it
    _require(code in CLEAN_ERRORS, f"{where}: {code.name}: {details[:300]!r}")
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError has grpc.Call's metadata
    except ValueError as mismatch:
        raise Violation(f"{where}: {code.name} with a status detail that disagrees: {mismatch}") from None
    _require(status is not None, f"{where}: {code.name} without a google.rpc.Status: {details[:300]!r}")
    assert status is not None
    check_status(status, where=where)


def _check_finished(
    request: pb.GenerateRequest, finished: pb.Finished, deltas: Sequence[pb.Delta], *, cancelled: bool
) -> None:
    reason = finished.reason
    _require(reason in KNOWN_REASONS, f"finished with reason {reason}")
    _require(reason != pb.FINISH_REASON_CANCELLED or cancelled, "CANCELLED though nobody cancelled it")
    _require(reason != pb.FINISH_REASON_DEADLINE or request.HasField("timeout"), "DEADLINE without a timeout")
    completion = finished.usage.completion_tokens
    if request.stopping.HasField("max_tokens"):
        _require(completion <= request.stopping.max_tokens, f"{completion} tokens past max_tokens")
    output = request.output
    if not output.HasField("token_ids") or output.token_ids:
        delivered = sum(len(d.token_ids) for d in deltas)
        _require(delivered == completion, f"{delivered} token ids delivered, usage says {completion}")
        if output.logprobs:
            _require(all(len(d.logprobs) == len(d.token_ids) for d in deltas), "logprobs do not match tokens")


async def _finish(task: asyncio.Future[None], within_s: float, what: str) -> BaseException | None:
    """Wait for ``task``; a hang is a violation. Returns what it raised (None if it returned)."""
    done, _ = await asyncio.wait({task}, timeout=within_s)
    if not done:
        task.cancel()
        raise Violation(f"{what} did not end within {within_s:g} s")
    return task.exception()


async def _abort(target: FuzzTarget, request_id: str) -> bool:
    """Abort ``request_id`` as a client would; whether it cancelled something.

    The id may be one the server refuses (too long, unprintable: the Generate it
    belongs to is then being refused too, just not yet answered on a slow
    machine); Abort must refuse it cleanly, with INVALID_ARGUMENT naming the field.
    """
    try:
        return (await target.generation.Abort(pb.AbortRequest(request_id=request_id))).cancelled
    except aio.AioRpcError as error:
        _require(not _valid_id(request_id), f"Abort of a valid id failed: {error.code().name}")
        _require(error.code() is grpc.StatusCode.INVALID_ARGUMENT, f"Abort answered {error.code().name}")
        check_call_error(error, sent_bytes=len(request_id), where="Abort")
        return False


async def run_generate(target: FuzzTarget, call: GenerateCall) -> None:
    """Run one Generate call as ``call.behaviour`` says and check what came back."""
    request = call.request
    target.tally.requests += 1
    timeout = call.deadline_s if call.behaviour is Behaviour.DEADLINE else BACKSTOP_S
    stream = target.generation.Generate(request, timeout=timeout)
    try:
        await _check_generate(target, call, stream)
    finally:
        stream.cancel()  # a no-op once the call is over; frees it when a check failed midway


async def _check_generate(
    target: FuzzTarget,
    call: GenerateCall,
    stream: aio.UnaryStreamCall[pb.GenerateRequest, pb.GenerateResponse],
) -> None:
    request = call.request
    responses: list[pb.GenerateResponse] = []

    async def read() -> None:
        try:
            while isinstance(response := await stream.read(), pb.GenerateResponse):
                responses.append(response)
                if call.behaviour is Behaviour.CANCEL_EARLY:
                    stream.cancel()
        except asyncio.CancelledError:
            if not stream.cancelled():
                raise  # this task was cancelled, not the call

    reader = asyncio.ensure_future(read())
    aborted = False
    done, _ = await asyncio.wait({reader}, timeout=target.patience_s)
    if not done:  # still running: cancel it as a client would
        request_id = request.request_id or (responses[0].request_id if responses else "")
        if request_id:
            aborted = await _abort(target, request_id)
    error = await _finish(reader, BACKSTOP_S, "Generate")
    code = await stream.code()
    if code is grpc.StatusCode.CANCELLED and call.behaviour is Behaviour.CANCEL_EARLY:
        target.tally.outcomes["cancelled by the client"] += 1
        return
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and call.behaviour is Behaviour.DEADLINE:
        target.tally.outcomes["client deadline"] += 1
        return
    if code is not grpc.StatusCode.OK:
        _require(isinstance(error, aio.AioRpcError), f"Generate ended {code.name} without an RpcError")
        assert isinstance(error, aio.AioRpcError)
        check_call_error(error, sent_bytes=request.ByteSize(), where="Generate")
        target.tally.outcomes[code.name] += 1
        return
    if error is not None:
        raise error
    try:
        result = from_responses(responses)
    except AssertionError as broken:
        raise Violation(f"Generate stream broke the contract: {broken}") from None
    if request.request_id:
        _require(responses[0].request_id == request.request_id, "responses carry another request_id")
    assert result.finished is not None
    _check_finished(request, result.finished, result.deltas, cancelled=aborted)
    target.tally.outcomes[f"finished {pb.FinishReason.Name(result.finished.reason)}"] += 1


async def run_generates(target: FuzzTarget, calls: Sequence[GenerateCall]) -> None:
    """Several Generate calls at once (they share the engine's batch)."""
    results = await asyncio.gather(*(run_generate(target, call) for call in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


@dataclass(slots=True)
class _SessionLedger:
    """Per id: the starts that named it, terminal events expected and seen, and the deltas so far.

    Starts that share an id may run one after another or be refused (ALREADY_EXISTS)
    while one runs; which start a ``finished`` belongs to is not on the wire, so it
    must fit one of them.
    """

    expected: Counter[str] = field(default_factory=Counter)
    terminal: Counter[str] = field(default_factory=Counter)
    started: Counter[str] = field(default_factory=Counter)
    cancelled: set[str] = field(default_factory=set)
    """Ids a cancel named after a start of theirs: these may finish CANCELLED."""
    requests: dict[str, list[pb.GenerateRequest]] = field(default_factory=dict)
    deltas: dict[str, list[pb.Delta]] = field(default_factory=dict)
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def plan(self, actions: Sequence[pb.SessionRequest]) -> None:
        for action in actions:
            match action.WhichOneof("action"):
                case "start":
                    request_id = action.start.request_id
                    if not _valid_id(request_id):
                        # The proto: a start whose own id is invalid gets its error for id "".
                        self.expected[""] += 1
                        continue
                    self.expected[request_id] += 1
                    self.requests.setdefault(request_id, []).append(action.start)
                case "cancel":
                    if action.cancel.request_id in self.requests:
                        self.cancelled.add(action.cancel.request_id)
                case _:
                    self.expected[""] += 1  # an empty action gets an error for id ""
        self._update()

    def record(self, response: pb.SessionResponse) -> None:
        """Check one event against the plan."""
        request_id = response.request_id
        describe_id = repr(request_id[:40])
        _require(request_id in self.expected, f"an event for {describe_id}, which no action named")
        match response.WhichOneof("event"):
            case "started":
                self.started[request_id] += 1
                _require(
                    self.started[request_id] <= len(self.requests.get(request_id, ())),
                    f"extra started: {describe_id}",
                )
                self.deltas[request_id] = []
            case "delta":
                _require(request_id in self.deltas, f"delta before started for {describe_id}")
                self.deltas[request_id].append(response.delta)
            case "finished":
                self.terminal[request_id] += 1
                _require(request_id in self.deltas, f"finished before started for {describe_id}")
                self._check_finished(request_id, response.finished)
                del self.deltas[request_id]
            case "error":
                self.terminal[request_id] += 1
                check_status(response.error, where=f"Session error event for {describe_id}")
            case None:
                raise Violation(f"a Session response with no event for {describe_id}")
        _require(
            self.terminal[request_id] <= self.expected[request_id],
            f"{self.terminal[request_id]} terminal events for {describe_id}, "
            f"started {self.expected[request_id]} times",
        )
        self._update()

    def _check_finished(self, request_id: str, finished: pb.Finished) -> None:
        cancelled = request_id in self.cancelled
        failures = []
        for request in self.requests[request_id]:
            try:
                _check_finished(request, finished, self.deltas[request_id], cancelled=cancelled)
                return
            except Violation as broken:
                failures.append(str(broken))
        raise Violation(f"Session {request_id[:40]!r}: {'; '.join(failures)}")

    def _update(self) -> None:
        if self.terminal == self.expected:
            self.complete.set()


async def run_session(target: FuzzTarget, case: SessionCase) -> None:
    """Write every action on one Session, read everything back, check one terminal event per start."""
    actions = list(case.actions)
    oversized = next((i for i, action in enumerate(actions) if action.ByteSize() > MAX_MESSAGE_BYTES), None)
    if oversized is not None:
        # The transport ends the stream at that message; writing on would only make this
        # client library turn its own failed writes into INTERNAL.
        del actions[oversized + 1 :]
    target.tally.requests += len(actions)
    ledger = _SessionLedger()
    ledger.plan(actions)
    call = target.generation.Session(timeout=3 * BACKSTOP_S)
    try:
        await _check_session(target, actions, oversized is not None, ledger, call)
    finally:
        call.cancel()  # a no-op once the call is over; frees it when a check failed midway


async def _check_session(
    target: FuzzTarget,
    actions: Sequence[pb.SessionRequest],
    oversized: bool,
    ledger: _SessionLedger,
    call: aio.StreamStreamCall[pb.SessionRequest, pb.SessionResponse],
) -> None:
    async def read() -> None:
        while isinstance(response := await call.read(), pb.SessionResponse):
            ledger.record(response)

    reader = asyncio.ensure_future(read())

    async def write(message: pb.SessionRequest) -> None:
        # Once the stream has ended, a write would only make this client library report its
        # own INTERNAL ("Internal error from Core") in place of the status the server sent.
        if not reader.done():
            await call.write(message)

    try:
        for action in actions:
            await write(action)
        if oversized:
            error = await _finish(reader, BACKSTOP_S, "Session with a message past 4 MiB")
            if isinstance(error, Violation):
                raise error
            code = error.code() if isinstance(error, aio.AioRpcError) else await call.code()
            _require(
                code is grpc.StatusCode.RESOURCE_EXHAUSTED, f"a message past 4 MiB ended the Session {code}"
            )
            target.tally.outcomes["session refused by the transport (message > 4 MiB)"] += 1
            return
        complete = asyncio.ensure_future(ledger.complete.wait())
        done, _ = await asyncio.wait(
            {complete, reader}, timeout=target.patience_s, return_when="FIRST_COMPLETED"
        )
        complete.cancel()
        if not done:  # still running: cancel everything on the stream as a client would
            for request_id in ledger.requests:
                ledger.cancelled.add(request_id)
                await write(pb.SessionRequest(cancel=pb.SessionCancel(request_id=request_id)))
        if not reader.done():
            await call.done_writing()
    except aio.AioRpcError:
        pass  # the stream already ended: the reader has its status
    error = await _finish(reader, 2 * BACKSTOP_S, "Session")
    if isinstance(error, Violation):
        raise error
    if isinstance(error, aio.AioRpcError):
        raise Violation(f"Session ended {error.code().name}: {(error.details() or '')[:300]!r}")
    code = await call.code()
    _require(code is grpc.StatusCode.OK, f"Session ended {code.name}: {(await call.details() or '')[:300]!r}")
    missing = {
        rid[:40]: n - ledger.terminal[rid] for rid, n in ledger.expected.items() if ledger.terminal[rid] != n
    }
    _require(not missing, f"Session ended OK with ids lacking their terminal event: {missing}")
    target.tally.outcomes["session ok"] += 1


async def run_raw(target: FuzzTarget, raw: RawCall) -> None:
    """Send bytes as a message: decodable ones must be served as usual, undecodable ones refused cleanly.

    An undecodable message is the caller's error: INVALID_ARGUMENT, never UNKNOWN or INTERNAL.
    """
    target.tally.requests += 1
    method = "Session" if raw.session else "Generate"
    path = f"/tokenwire.v1.GenerationService/{method}"
    try:
        async with asyncio.timeout(BACKSTOP_S):
            if raw.session:
                session: aio.StreamStreamMultiCallable[bytes, pb.SessionResponse] = (
                    target.channel.stream_stream(path, response_deserializer=pb.SessionResponse.FromString)
                )
                replies = [r async for r in session(iter([raw.data]))]
                for reply in replies:
                    if reply.WhichOneof("event") == "error":
                        check_status(reply.error, where="Session error event")
            else:
                generate: aio.UnaryStreamMultiCallable[bytes, pb.GenerateResponse] = (
                    target.channel.unary_stream(path, response_deserializer=pb.GenerateResponse.FromString)
                )
                from_responses([r async for r in generate(raw.data)])
        target.tally.outcomes["ok"] += 1
    except aio.AioRpcError as error:
        if raw.decodes or len(raw.data) > MAX_MESSAGE_BYTES:
            check_call_error(error, sent_bytes=len(raw.data), where=method)
        else:
            code = error.code()
            _require(
                code is grpc.StatusCode.INVALID_ARGUMENT,
                f"undecodable {method} message: {code.name}: {(error.details() or '')[:300]!r}",
            )
        target.tally.outcomes[error.code().name] += 1


def _engine_threads() -> str:
    """Where the server's threads are, when it runs in this process: what a hang needs first."""
    frames = sys._current_frames()
    stacks = [
        f"thread {thread.name}:\n{''.join(traceback.format_stack(frames[thread.ident])[-8:])}"
        for thread in threading.enumerate()
        if thread.name.startswith("tokenwire-") and thread.ident in frames
    ]
    return "\n".join(stacks)


async def check_idle_and_serving(target: FuzzTarget) -> None:
    """No request is left in the engine or the registry, and health says SERVING."""
    load = model_pb2.GetLoadResponse()
    try:
        async with asyncio.timeout(IDLE_WAIT_S):
            while True:
                load = await target.model.GetLoad(model_pb2.GetLoadRequest(), timeout=IDLE_WAIT_S)
                if (load.active_requests, load.waiting_requests, load.in_flight_requests) == (0, 0, 0):
                    break
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise Violation(f"leaked: {describe(load)} after {IDLE_WAIT_S:g} s\n{_engine_threads()}") from None
    health = await target.health(health_pb2.HealthCheckRequest(), timeout=IDLE_WAIT_S)
    _require(health.status == health_pb2.HealthCheckResponse.SERVING, f"health is {health.status}")


def _valid_id(request_id: str) -> bool:
    """The proto's rule for request ids: 1 to 128 printable ASCII characters."""
    return 1 <= len(request_id) <= 128 and all(" " <= c <= "~" for c in request_id)
