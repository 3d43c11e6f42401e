"""The typed Python client (tokenwire.client) and its examples.

Live-server tests run the real model; the retry and TLS tests run a small
grpc.aio servicer written here on 127.0.0.1, which scripts the failures
(UNAVAILABLE / RESOURCE_EXHAUSTED with google.rpc.RetryInfo) a real server
only produces under load or while loading.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status
from tokenwire.client import (
    AsyncClient,
    Client,
    Completion,
    DeadlineExceededError,
    Delta,
    Event,
    Finished,
    FinishReason,
    InvalidArgumentError,
    Load,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryPolicy,
    SpeculativeStats,
    Started,
    Timing,
    TlsOptions,
    TokenwireError,
    UnauthenticatedError,
    UnavailableError,
    Usage,
    user,
)
from tokenwire.client.events import CompletionBuilder
from tokenwire.client.options import build_request
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from service.config import ServeConfig
from tests.client_examples import (
    check_retry_output,
    check_samples_output,
    check_secure_stream_example,
    check_session_output,
    check_stream_output,
    check_structured_output,
    run_example,
    run_while_busy,
)
from tests.conftest import SecureLiveServer, write_tokens_file
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.tls_certs import TOKEN_MODEL_ONLY

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "clients" / "python" / "examples"
FRANCE = [user("What is the capital of France?")]


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example([sys.executable, str(EXAMPLES / "stream.py")], live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example([sys.executable, str(EXAMPLES / "session.py")], live_server))


def test_structured_example(live_server: LiveServer) -> None:
    check_structured_output(run_example([sys.executable, str(EXAMPLES / "structured.py")], live_server))


def test_samples_example(live_server: LiveServer) -> None:
    check_samples_output(run_example([sys.executable, str(EXAMPLES / "samples.py")], live_server))


def test_retry_example(busy_sim_server: LiveServer) -> None:
    check_retry_output(run_while_busy([sys.executable, str(EXAMPLES / "retry.py")], busy_sim_server))


def test_structured_output_n_and_logit_bias_options_map_to_the_request() -> None:
    request = build_request(
        "hi", None, {"json_schema": {"type": "object"}, "n": 3, "logit_bias": {5: -100.0, 7: 2.5}}
    )
    assert json.loads(request.structured_output.json_schema) == {"type": "object"}
    assert request.n == 3 and dict(request.sampling.logit_bias) == {5: -100.0, 7: 2.5}
    grammar = build_request("hi", None, {"gbnf_grammar": 'root ::= "a"'}).structured_output.grammar
    assert grammar.syntax == generation_pb2.Grammar.SYNTAX_GBNF and grammar.text == 'root ::= "a"'
    lark = build_request("hi", None, {"lark_grammar": 'start: "a"'}).structured_output.grammar
    assert lark.syntax == generation_pb2.Grammar.SYNTAX_LARK
    assert build_request("hi", None, {"json_object": True}).structured_output.HasField("json_object")
    assert list(build_request("hi", None, {"choice": ["a", "b"]}).structured_output.choice.options) == [
        "a",
        "b",
    ]
    assert build_request("hi", None, {"regex": "[0-9]+"}).structured_output.regex == "[0-9]+"
    assert not build_request("hi", None, {}).HasField("structured_output")
    with pytest.raises(ValueError, match="set one of"):
        build_request("hi", None, {"regex": "a", "choice": ["a"]})


def test_a_sampled_stream_is_complete_only_with_every_samples_finished() -> None:
    builder = CompletionBuilder(2)
    builder.add(Started("r", 3, "m"))
    builder.add(Delta("r", "a", (1,), (), 0))
    builder.add(Delta("r", "b", (2,), (), 1))
    usage = Usage(3, 1, 0)
    timing = Timing(None, None, None)
    stats = SpeculativeStats(0, 0, 1)
    builder.add(Finished("r", FinishReason.LENGTH, usage, timing, stats, sample_index=1))
    assert not builder.complete
    with pytest.raises(RuntimeError, match="incomplete"):
        builder.build_samples()
    builder.add(Finished("r", FinishReason.STRUCTURED_OUTPUT_COMPLETE, usage, timing, stats, sample_index=0))
    first, second = builder.build_samples()
    assert (first.text, second.text) == ("a", "b")
    assert first.reason is FinishReason.STRUCTURED_OUTPUT_COMPLETE
    with pytest.raises(ValueError, match="n=2"):
        builder.build()


async def test_complete_samples_and_structured_output_end_to_end(client: AsyncClient) -> None:
    info = await client.model_info()
    assert "json_schema" in info.structured_output_kinds and info.max_samples == 16
    samples = await client.complete_samples("Say a number:", n=2, seed=1, max_tokens=6, regex="[0-9]{1,3}")
    assert len(samples) == 2
    for sample in samples:
        assert sample.text.isdigit() and len(sample.text) <= 3
        assert sample.reason in (FinishReason.STRUCTURED_OUTPUT_COMPLETE, FinishReason.END_OF_SEQUENCE)
    assert sum(s.usage.prompt_tokens for s in samples) == samples[0].started.prompt_tokens
    with pytest.raises(ValueError, match="n=2"):
        await client.complete("Say a number:", n=2, max_tokens=4)


# --- the async client against the live server --------------------------------------------------


@pytest.fixture
async def client(live_server: LiveServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(live_server.address, default_timeout=120) as opened:
        yield opened


LONG_PROMPT = "A long story:"


async def room_left(client: AsyncClient, prompt: str = LONG_PROMPT) -> int:
    """max_tokens that fills the rest of the context: with ignore_eos, natural completion takes
    thousands of steps (minutes on a CPU), far longer than ``wait_idle`` waits, so a test that
    sees the server idle sooner has seen cancellation work."""
    info = await client.model_info()
    return info.context_length - len((await client.tokenize(prompt)).token_ids)


def idle(load: Load) -> bool:
    """No generation in flight, and none holding or waiting for an engine slot."""
    return load.in_flight_requests == 0 and load.active_requests == 0 and load.waiting_requests == 0


async def wait_idle(client: AsyncClient) -> None:
    async with asyncio.timeout(30):
        while True:
            if idle(await client.load()):
                return
            await asyncio.sleep(0.02)


async def test_generate_yields_typed_events_in_order(client: AsyncClient) -> None:
    events: list[Event] = [
        event
        async for event in client.generate(
            FRANCE, temperature=0.0, max_tokens=16, logprobs=True, top_logprobs=2
        )
    ]
    assert isinstance(events[0], Started) and events[0].prompt_tokens > 0 and events[0].model
    assert isinstance(events[-1], Finished)
    deltas = [e for e in events[1:-1] if isinstance(e, Delta)]
    assert len(deltas) == len(events) - 2
    text = "".join(d.text for d in deltas)
    assert "Paris" in text
    finished = events[-1]
    assert finished.reason in (FinishReason.END_OF_SEQUENCE, FinishReason.LENGTH)
    assert finished.usage.completion_tokens == sum(len(d.token_ids) for d in deltas)
    assert finished.timing.total_s is not None and finished.timing.total_s > 0
    logprobs = [lp for d in deltas for lp in d.logprobs]
    assert [lp.token_id for lp in logprobs] == [t for d in deltas for t in d.token_ids]
    assert all(lp.logprob <= 0 and len(lp.top) == 2 for lp in logprobs)
    assert len({e.request_id for e in events}) == 1 and events[0].request_id


async def test_complete_returns_the_whole_completion(client: AsyncClient) -> None:
    completion = await client.complete(FRANCE, request_id="py-complete", temperature=0.0, max_tokens=16)
    assert isinstance(completion, Completion)
    assert completion.request_id == "py-complete"
    assert "Paris" in completion.text
    assert len(completion.token_ids) == completion.usage.completion_tokens
    assert await client.detokenize(completion.token_ids) == completion.text


async def test_speculation_can_be_chosen_per_generation(client: AsyncClient) -> None:
    copy = [user("Repeat exactly: the red fox jumps over the red fox jumps over the red fox jumps over")]
    off = await client.complete(copy, temperature=0.0, max_tokens=24, ignore_eos=True, speculation="off")
    ngram = await client.complete(
        copy, temperature=0.0, max_tokens=24, ignore_eos=True, speculation="ngram", draft_length=4
    )
    assert ngram.token_ids == off.token_ids  # greedy speculation is lossless
    assert off.finished.speculative.draft_tokens == 0
    assert ngram.finished.speculative.accepted_tokens > 0
    assert ngram.finished.speculative.decode_steps < off.finished.speculative.decode_steps


async def test_time_limit_keeps_partial_output(client: AsyncClient) -> None:
    completion = await client.complete(
        "Count to one thousand:", max_tokens=500, ignore_eos=True, time_limit_s=0.3
    )
    assert completion.reason is FinishReason.DEADLINE
    assert completion.usage.completion_tokens < 500  # may be 0 on a busy machine


async def test_leaving_generate_early_cancels_the_call(client: AsyncClient) -> None:
    max_tokens = await room_left(client)
    async for event in client.generate(LONG_PROMPT, max_tokens=max_tokens, ignore_eos=True):
        if isinstance(event, Delta):
            break
    await wait_idle(client)


async def test_invalid_argument_carries_field_violations(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await client.complete("hi", temperature=500.0, top_p=0.0)
    fields = {v.field for v in caught.value.field_violations}
    assert {"sampling.temperature", "sampling.top_p"} <= fields
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.status is not None and caught.value.error_info is not None


async def test_deadline_fails_the_call(client: AsyncClient) -> None:
    max_tokens = await room_left(client)
    with pytest.raises(DeadlineExceededError):
        await client.complete(LONG_PROMPT, max_tokens=max_tokens, ignore_eos=True, timeout=0.3)
    await wait_idle(client)


async def test_abort_cancels_a_generate_stream_from_another_call(client: AsyncClient) -> None:
    events: list[Event] = []
    async for event in client.generate(
        "A long story:", request_id="py-abort", max_tokens=400, ignore_eos=True
    ):
        events.append(event)
        if isinstance(event, Delta) and len(events) == 2:
            assert await client.abort("py-abort") is True
    assert isinstance(events[-1], Finished) and events[-1].reason is FinishReason.CANCELLED
    assert await client.abort("py-abort") is False


async def test_session_multiplexes_cancels_and_reports_errors_per_id(client: AsyncClient) -> None:
    async with client.session() as session:
        keep = await session.start("keep", "The ocean is", temperature=0.0, max_tokens=8, ignore_eos=True)
        drop = await session.start("drop", "Mountains are", max_tokens=400, ignore_eos=True)
        bad = await session.start("bad", "hi", top_p=5.0)
        with pytest.raises(ValueError, match="already running"):
            await session.start("keep", "again")

        async def cancel_after_first_delta() -> Completion:
            async for event in drop:
                if isinstance(event, Delta):
                    await drop.cancel()
                    break
            return await drop.result()

        keep_done, drop_done = await asyncio.gather(keep.result(), cancel_after_first_delta())
        with pytest.raises(InvalidArgumentError) as caught:
            await bad.result()
    assert keep_done.reason is FinishReason.LENGTH and len(keep_done.token_ids) == 8
    assert drop_done.reason is FinishReason.CANCELLED and drop_done.usage.completion_tokens < 400
    assert caught.value.request_id == "bad"
    assert [v.field for v in caught.value.field_violations] == ["sampling.top_p"]


async def test_session_cancel_cancels_everything(client: AsyncClient) -> None:
    max_tokens = await room_left(client)
    session = client.session()
    async with session:
        handle = await session.start("long", LONG_PROMPT, max_tokens=max_tokens, ignore_eos=True)
        assert isinstance(await handle.__anext__(), Started)
        await session.cancel()
        with pytest.raises(TokenwireError):
            await handle.result()
    await wait_idle(client)


async def test_model_info_and_tokenize(client: AsyncClient) -> None:
    info = await client.model_info()
    assert info.model and info.vocab_size > 0 and info.has_chat_template
    tokens = await client.tokenize("héllo wörld")
    assert tokens.token_ids and all(t < info.vocab_size for t in tokens.token_ids)
    assert await client.detokenize(tokens.token_ids) == "héllo wörld"
    chat = await client.tokenize(FRANCE)
    assert "France" in chat.rendered_prompt


def test_blocking_client(live_server: LiveServer) -> None:
    with Client(live_server.address) as blocking:
        assert "Paris" in blocking.complete(FRANCE, temperature=0.0, max_tokens=16).text
        text = "".join(
            e.text for e in blocking.generate(FRANCE, temperature=0.0, max_tokens=16) if isinstance(e, Delta)
        )
        assert "Paris" in text
        # The whole rest of the context: idle within the wait below only if leaving cancelled it.
        room = blocking.model_info().context_length - len(blocking.tokenize(LONG_PROMPT).token_ids)
        for event in blocking.generate(LONG_PROMPT, max_tokens=room, ignore_eos=True):
            if isinstance(event, Delta):
                break  # leaving early cancels the call
        deadline = time.monotonic() + 30
        while not idle(blocking.load()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert idle(blocking.load())
        with blocking.session() as session:
            short = session.start("s", "The ocean is", max_tokens=4, ignore_eos=True)
            long = session.start("l", "A long story:", max_tokens=400, ignore_eos=True)
            for event in long:
                if isinstance(event, Delta):
                    long.cancel()
                    break
            assert long.result().reason is FinishReason.CANCELLED
            assert short.result().usage.completion_tokens == 4
        assert blocking.model_info().vocab_size > 0
        assert blocking.abort("nothing-here") is False


# --- retries and TLS against a scripted servicer ------------------------------------------------


def rich_status(code: grpc.StatusCode, retry_after_s: float | None) -> status_pb2.Status:
    details = []
    if retry_after_s is not None:
        packed = any_pb2.Any()
        whole = int(retry_after_s)
        packed.Pack(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((retry_after_s - whole) * 1e9))
            )
        )
        details.append(packed)
    return status_pb2.Status(code=code.value[0], message=f"scripted {code.name}", details=details)


def events_for(request_id: str) -> list[generation_pb2.GenerateResponse]:
    G = generation_pb2
    return [
        G.GenerateResponse(request_id=request_id, started=G.Started(prompt_tokens=3, model="fake")),
        G.GenerateResponse(request_id=request_id, delta=G.Delta(token_ids=[7], text="ok")),
        G.GenerateResponse(
            request_id=request_id,
            finished=G.Finished(
                reason=G.FINISH_REASON_LENGTH, usage=G.Usage(prompt_tokens=3, completion_tokens=1)
            ),
        ),
    ]


@dataclass
class Script:
    """Failures to return, in order, before succeeding: (code, RetryInfo delay or None)."""

    failures: list[tuple[grpc.StatusCode, float | None]] = field(default_factory=list)
    fail_after_started: bool = False
    calls: int = 0

    def next_failure(self) -> status_pb2.Status | None:
        self.calls += 1
        if self.calls <= len(self.failures):
            return rich_status(*self.failures[self.calls - 1])
        return None


class ScriptedGeneration(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    async def Generate(
        self,
        request: generation_pb2.GenerateRequest,
        context: aio.ServicerContext[generation_pb2.GenerateRequest, generation_pb2.GenerateResponse],
    ) -> AsyncIterator[generation_pb2.GenerateResponse]:
        failure = self.script.next_failure()
        if failure is None:
            for index, response in enumerate(events_for(request.request_id or "server-id")):
                yield response
                if index == 0 and self.script.fail_after_started:
                    failure = rich_status(grpc.StatusCode.UNAVAILABLE, 0.01)
                    break
        if failure is not None:
            await context.abort_with_status(rpc_status.to_status(failure))

    async def Session(
        self,
        request_iterator: AsyncIterator[generation_pb2.SessionRequest],
        context: aio.ServicerContext[generation_pb2.SessionRequest, generation_pb2.SessionResponse],
    ) -> AsyncIterator[generation_pb2.SessionResponse]:
        async for request in request_iterator:
            rid = request.start.request_id
            failure = self.script.next_failure()
            if failure is not None:
                yield generation_pb2.SessionResponse(request_id=rid, error=failure)
                continue
            for response in events_for(rid):
                session_response = generation_pb2.SessionResponse()
                session_response.ParseFromString(response.SerializeToString())  # same field numbers
                yield session_response

    async def Abort(
        self,
        request: generation_pb2.AbortRequest,
        context: aio.ServicerContext[generation_pb2.AbortRequest, generation_pb2.AbortResponse],
    ) -> generation_pb2.AbortResponse:
        return generation_pb2.AbortResponse(cancelled=False)


class ScriptedModel(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    async def GetModelInfo(
        self,
        request: model_pb2.GetModelInfoRequest,
        context: aio.ServicerContext[model_pb2.GetModelInfoRequest, model_pb2.GetModelInfoResponse],
    ) -> model_pb2.GetModelInfoResponse:
        failure = self.script.next_failure()
        if failure is not None:
            await context.abort_with_status(rpc_status.to_status(failure))
        return model_pb2.GetModelInfoResponse(model="fake", vocab_size=10)

    async def GetLoad(
        self,
        request: model_pb2.GetLoadRequest,
        context: aio.ServicerContext[model_pb2.GetLoadRequest, model_pb2.GetLoadResponse],
    ) -> model_pb2.GetLoadResponse:
        return model_pb2.GetLoadResponse()

    async def WatchLoad(
        self,
        request: model_pb2.WatchLoadRequest,
        context: aio.ServicerContext[model_pb2.WatchLoadRequest, model_pb2.WatchLoadResponse],
    ) -> AsyncIterator[model_pb2.WatchLoadResponse]:
        yield model_pb2.WatchLoadResponse()

    async def Tokenize(
        self,
        request: model_pb2.TokenizeRequest,
        context: aio.ServicerContext[model_pb2.TokenizeRequest, model_pb2.TokenizeResponse],
    ) -> model_pb2.TokenizeResponse:
        return model_pb2.TokenizeResponse()

    async def Detokenize(
        self,
        request: model_pb2.DetokenizeRequest,
        context: aio.ServicerContext[model_pb2.DetokenizeRequest, model_pb2.DetokenizeResponse],
    ) -> model_pb2.DetokenizeResponse:
        return model_pb2.DetokenizeResponse()


@dataclass
class Fake:
    address: str
    script: Script


async def start_fake(credentials: grpc.ServerCredentials | None = None) -> tuple[aio.Server, Fake]:
    script = Script()
    server = aio.server()
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(ScriptedGeneration(script), server)
    model_pb2_grpc.add_ModelServiceServicer_to_server(ScriptedModel(script), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, Fake(f"127.0.0.1:{port}", script)


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    server, scripted = await start_fake()
    yield scripted
    await server.stop(0)


FAST = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)
U, R = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_generate_retries_honouring_retry_info(fake: Fake) -> None:
    fake.script.failures = [(U, 0.15), (R, 0.15)]
    async with AsyncClient(fake.address, retry=FAST) as client:
        began = time.monotonic()
        stream = client.generate("hi", request_id="r1")
        events = [event async for event in stream]
        elapsed = time.monotonic() - began
    assert stream.attempts == 3 and fake.script.calls == 3
    assert elapsed >= 0.3  # waited the server's RetryInfo delay, not FAST's 10-50 ms backoff
    assert isinstance(events[-1], Finished) and events[-1].request_id == "r1"


async def test_a_calls_own_retry_policy_overrides_the_clients(fake: Fake) -> None:
    fake.script.failures = [(U, 0.01), (U, 0.01)]
    async with AsyncClient(fake.address, retry=RetryPolicy.disabled()) as client:
        stream = client.generate("hi", request_id="per-call", retry=FAST)
        events = [event async for event in stream]
        assert stream.attempts == 3 and isinstance(events[-1], Finished)
        fake.script.failures, fake.script.calls = [(U, 0.01)], 0
        with pytest.raises(UnavailableError):
            await client.complete("hi", request_id="no-retry")  # the client's policy: none
        fake.script.failures, fake.script.calls = [(U, 0.01)], 0
        assert (await client.model_info(retry=FAST)).model  # unary calls take one too
        assert fake.script.calls == 2


async def test_retries_are_bounded(fake: Fake) -> None:
    fake.script.failures = [(U, 0.01)] * 5
    async with AsyncClient(fake.address, retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(UnavailableError) as caught:
            await client.complete("hi")
    assert fake.script.calls == 2
    assert caught.value.retry_delay == pytest.approx(0.01)


async def test_jittered_backoff_without_retry_info(fake: Fake) -> None:
    fake.script.failures = [(U, None), (R, None)]
    async with AsyncClient(fake.address, retry=FAST) as client:
        completion = await client.complete("hi")
    assert completion.text == "ok" and fake.script.calls == 3


def test_backoff_is_exponential_with_equal_jitter() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2.0, max_attempts=10)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.backoff_s(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    error = UnavailableError(U, "x")
    assert policy.delay_s(10, error) is None  # attempts exhausted
    assert policy.delay_s(1, InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "x")) is None


async def test_no_retry_once_an_event_was_received(fake: Fake) -> None:
    fake.script.fail_after_started = True
    seen: list[Event] = []

    async def read_all(client: AsyncClient) -> None:
        async for event in client.generate("hi"):
            seen.append(event)

    async with AsyncClient(fake.address, retry=FAST) as client:
        with pytest.raises(UnavailableError):
            await read_all(client)
    assert fake.script.calls == 1 and [type(e) for e in seen] == [Started]


async def test_non_retryable_codes_and_deadlines_stop_retries(fake: Fake) -> None:
    fake.script.failures = [(grpc.StatusCode.INVALID_ARGUMENT, None)]
    async with AsyncClient(fake.address, retry=FAST) as client:
        with pytest.raises(InvalidArgumentError):
            await client.complete("hi")
        assert fake.script.calls == 1
        fake.script.failures, fake.script.calls = [(U, 5.0)], 0
        began = time.monotonic()
        with pytest.raises(UnavailableError):
            await client.complete("hi", timeout=1.0)  # waiting 5 s would pass the deadline
        assert time.monotonic() - began < 1.0 and fake.script.calls == 1


async def test_session_start_retried_after_error_event(fake: Fake) -> None:
    fake.script.failures = [(R, 0.05)]
    async with AsyncClient(fake.address, retry=FAST) as client, client.session() as session:
        handle = await session.start("s1", "hi")
        completion = await handle.result()
    assert handle.attempts == 2 and completion.text == "ok" and completion.request_id == "s1"


async def test_unary_calls_retry(fake: Fake) -> None:
    fake.script.failures = [(R, 0.01)]
    async with AsyncClient(fake.address, retry=FAST) as client:
        assert (await client.model_info()).model == "fake"
    fake.script.failures, fake.script.calls = [(R, 0.01)], 0
    async with AsyncClient(fake.address, retry=RetryPolicy.disabled()) as client:
        with pytest.raises(ResourceExhaustedError) as caught:
            await client.model_info()
    assert caught.value.retry_delay == pytest.approx(0.01)


@dataclass
class Pki:
    ca: bytes
    server_chain: bytes
    server_key: bytes
    client_chain: bytes
    client_key: bytes


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for tokenwire.test and a client certificate (openssl CLI)."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    for name, ext in [
        ("server", "subjectAltName=DNS:tokenwire.test"),
        ("client", "extendedKeyUsage=clientAuth"),
    ]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")  # fmt: skip
    return Pki(
        *(
            d.joinpath(f).read_bytes()
            for f in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
        )
    )


async def test_mutual_tls_with_server_name_override(pki: Pki) -> None:
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key, pki.server_chain)], root_certificates=pki.ca, require_client_auth=True
    )
    server, scripted = await start_fake(credentials)
    try:
        tls = TlsOptions(pki.ca, pki.client_chain, pki.client_key, server_name="tokenwire.test")
        async with AsyncClient(scripted.address, tls=tls, retry=RetryPolicy.disabled()) as client:
            assert (await client.model_info()).model == "fake"
        no_client_cert = TlsOptions(pki.ca, server_name="tokenwire.test")
        async with AsyncClient(scripted.address, tls=no_client_cert, retry=RetryPolicy.disabled()) as client:
            with pytest.raises(UnavailableError):
                await client.model_info(timeout=10)
    finally:
        await server.stop(0)
    with pytest.raises(ValueError, match="go together"):
        TlsOptions(pki.ca, certificate_chain=pki.client_chain)


# --- TLS, mTLS and bearer tokens against the real server ---------------------------------------


def secure_tls(server: SecureLiveServer) -> TlsOptions:
    pki = server.pki
    return TlsOptions.from_files(pki.ca_cert, pki.client_cert, pki.client_key)


def test_stream_example_over_mtls_with_tokens(secure_live_server: SecureLiveServer) -> None:
    check_secure_stream_example([sys.executable, str(EXAMPLES / "stream.py")], secure_live_server)


async def test_the_token_rides_on_unary_and_streaming_calls(secure_live_server: SecureLiveServer) -> None:
    server = secure_live_server
    async with AsyncClient(server.address, tls=secure_tls(server), token=server.token_all) as client:
        assert "Paris" in (await client.complete(FRANCE, temperature=0.0, max_tokens=16)).text
        async with client.session() as session:
            handle = await session.start("tls-1", FRANCE, temperature=0.0, max_tokens=16)
            assert "Paris" in (await handle.result()).text
    async with AsyncClient(server.address, tls=secure_tls(server), token=server.token_model_only) as client:
        assert (await client.model_info()).model
        with pytest.raises(PermissionDeniedError) as denied:
            await client.complete(FRANCE, max_tokens=4)
        assert denied.value.error_info is not None and denied.value.error_info.reason == "PERMISSION_DENIED"
    async with AsyncClient(server.address, tls=secure_tls(server), retry=RetryPolicy.disabled()) as client:
        for call in (client.model_info(), client.complete(FRANCE, max_tokens=4)):
            with pytest.raises(UnauthenticatedError) as refused:
                await call
            assert refused.value.error_info is not None
            assert refused.value.error_info.reason == "UNAUTHENTICATED"
        async with client.session() as session:
            handle = await session.start("tls-2", FRANCE, max_tokens=4)
            with pytest.raises(UnauthenticatedError):
                await handle.result()


def test_the_blocking_client_sends_the_token(secure_live_server: SecureLiveServer) -> None:
    server = secure_live_server
    with Client(server.address, tls=secure_tls(server), token=server.token_all) as client:
        assert "Paris" in client.complete(FRANCE, temperature=0.0, max_tokens=16).text
    with (
        Client(server.address, tls=secure_tls(server), token="tw-wrong") as client,
        pytest.raises(UnauthenticatedError),
    ):
        client.model_info()


async def test_a_token_works_over_plaintext_too(tmp_path: Path) -> None:
    """Metadata, not call credentials (which gRPC sends only over TLS): a TLS-terminating proxy
    in front of a plaintext listener still sees the token."""
    config = ServeConfig(port=0, engine="sim", auth_tokens_file=write_tokens_file(tmp_path / "tokens"))
    live, thread = serve_in_thread(config)
    try:
        async with AsyncClient(live.address, token=TOKEN_MODEL_ONLY) as client:
            assert (await client.model_info()).engine == "sim"
    finally:
        stop_live_server(live, thread)


def test_token_options_are_checked_before_any_call() -> None:
    for bad in ("", "two words", "tab\there", "caf\u00e9"):
        with pytest.raises(ValueError, match="bearer token"):
            AsyncClient("127.0.0.1:1", token=bad)
    with pytest.raises(ValueError, match="not both"):
        AsyncClient("127.0.0.1:1", token="t", metadata=[("authorization", "Bearer u")])
    assert AsyncClient("127.0.0.1:1", token="t", metadata=[("x-a", "b")]).metadata == (
        ("x-a", "b"),
        ("authorization", "Bearer t"),
    )
