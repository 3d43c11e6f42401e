"""TLS, mTLS and bearer tokens, through real servers (sim engine) and real gRPC clients.

Certificates are made by ``openssl`` for each module run (tests/tls_certs.py);
TLS clients connect to ``localhost:<port>``, the name the server certificate carries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from service.auth import MAX_TOKEN_BYTES, Right, TokenPolicy, load_policy, parse_entries
from service.config import ConfigError, OpenServiceName, ServeConfig, SimOptions
from service.tls import listener_risks
from tests.client_examples import secure_env
from tests.conftest import SecureLiveServer, write_tokens_file
from tests.live_servers import LiveServer, serve_in_thread, stop_live_server
from tests.metrics_scrape import scrape_text
from tests.streams import collect
from tests.tls_certs import TOKEN_ALL, TOKEN_MODEL_ONLY, TestPki, make_test_pki

SHA_ONLY_TOKEN = "tw-test-hashed-5d1e0c7b"
"""Configured only as its sha256: digest, with the generate right."""
Metadata = Sequence[tuple[str, str]]


def sim_config(**changes: object) -> ServeConfig:
    return replace(ServeConfig(port=0, engine="sim", sim=SimOptions(step_ms=1.0)), **changes)  # type: ignore[arg-type]  # keyword fields of ServeConfig


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_tokens_file(tmp_path_factory.mktemp("tokens") / "tokens")
    digest = hashlib.sha256(SHA_ONLY_TOKEN.encode()).hexdigest()
    path.write_text(path.read_text() + f"\n\nsha256:{digest} generate\n")
    return path


def running(config: ServeConfig) -> Iterator[LiveServer]:
    live, thread = serve_in_thread(config)
    try:
        yield live
    finally:
        stop_live_server(live, thread)


def localhost(live: LiveServer) -> str:
    return f"localhost:{live.address.rpartition(':')[2]}"


@pytest.fixture(scope="module")
def tls_server(pki: TestPki) -> Iterator[LiveServer]:
    yield from running(sim_config(tls_cert=pki.server_cert, tls_key=pki.server_key))


@pytest.fixture(scope="module")
def mtls_server(pki: TestPki) -> Iterator[LiveServer]:
    yield from running(
        sim_config(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca_cert)
    )


@pytest.fixture(scope="module")
def token_server(tokens_file: Path) -> Iterator[LiveServer]:
    yield from running(sim_config(auth_tokens_file=tokens_file))


def tls_credentials(pki: TestPki, *, client: tuple[Path, Path] | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=client[1].read_bytes() if client is not None else None,
        certificate_chain=client[0].read_bytes() if client is not None else None,
    )


async def model_info(channel: aio.Channel, metadata: Metadata = ()) -> model_pb2.GetModelInfoResponse:
    stub = model_pb2_grpc.ModelServiceStub(channel)
    return await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), metadata=metadata, timeout=30)


async def generate_text(channel: aio.Channel, metadata: Metadata = ()) -> str:
    stub = generation_pb2_grpc.GenerationServiceStub(channel)
    request = generation_pb2.GenerateRequest(
        text="hello", stopping=generation_pb2.StoppingCriteria(max_tokens=5, ignore_eos=True)
    )
    result = await collect(stub.Generate(request, metadata=metadata, timeout=30))
    assert len(result.token_ids) == 5
    return result.text


async def session_events(channel: aio.Channel, metadata: Metadata = ()) -> list[str]:
    stub = generation_pb2_grpc.GenerationServiceStub(channel)
    call = stub.Session(metadata=metadata, timeout=30)
    start = generation_pb2.GenerateRequest(
        request_id="s1", text="hi", stopping=generation_pb2.StoppingCriteria(max_tokens=3)
    )
    await call.write(generation_pb2.SessionRequest(start=start))
    events: list[str] = []
    while isinstance(response := await call.read(), generation_pb2.SessionResponse):
        events.append(str(response.WhichOneof("event")))
        if events[-1] in ("finished", "error"):
            break
    await call.done_writing()
    return events


def rich_status(error: aio.AioRpcError) -> status_pb2.Status:
    status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError carries the same trailing metadata as grpc.Call
    assert status is not None, f"no rich status details: {error}"
    return status


def error_reason(error: aio.AioRpcError) -> str:
    for detail in rich_status(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            assert info.domain == "tokenwire.v1"
            return info.reason
    raise AssertionError("no google.rpc.ErrorInfo detail")


# --- TLS and mTLS -------------------------------------------------------------------------------


async def test_tls_serves_verified_clients_and_refuses_plaintext(
    tls_server: LiveServer, pki: TestPki
) -> None:
    async with aio.secure_channel(localhost(tls_server), tls_credentials(pki)) as channel:
        assert (await model_info(channel)).engine == "sim"
        assert await generate_text(channel)
    async with aio.insecure_channel(tls_server.address) as plaintext:
        with pytest.raises(aio.AioRpcError) as refused:
            await model_info(plaintext)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_client_refuses_a_server_its_ca_did_not_sign(tls_server: LiveServer, pki: TestPki) -> None:
    wrong_roots = grpc.ssl_channel_credentials(root_certificates=pki.other_client_cert.read_bytes())
    async with aio.secure_channel(localhost(tls_server), wrong_roots) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await model_info(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_needs_a_client_certificate_from_the_configured_ca(
    mtls_server: LiveServer, pki: TestPki
) -> None:
    target = localhost(mtls_server)
    async with aio.secure_channel(
        target, tls_credentials(pki, client=(pki.client_cert, pki.client_key))
    ) as channel:
        assert (await model_info(channel)).engine == "sim"
        events = await session_events(channel)
        assert events[0] == "started" and events[-1] == "finished"
    for credentials in (
        tls_credentials(pki),  # no client certificate
        tls_credentials(pki, client=(pki.other_client_cert, pki.other_client_key)),  # another CA's
    ):
        async with aio.secure_channel(target, credentials) as channel:
            with pytest.raises(aio.AioRpcError) as refused:
                await model_info(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


# --- Bearer tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("tw-not-a-known-token"),
        (("authorization", TOKEN_ALL),),  # no scheme
        (("authorization", f"Basic {TOKEN_ALL}"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer " + "x" * (MAX_TOKEN_BYTES + 1)),),
        (*bearer(TOKEN_ALL), *bearer(TOKEN_ALL)),
    ],
    ids=["none", "unknown", "no-scheme", "basic", "empty", "too-long", "twice"],
)
async def test_calls_without_a_valid_token_are_unauthenticated(
    token_server: LiveServer, metadata: Metadata
) -> None:
    async with aio.insecure_channel(token_server.address) as channel:
        for call in (model_info, generate_text, session_events):
            with pytest.raises(aio.AioRpcError) as refused:
                await call(channel, metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, call.__name__
            assert error_reason(refused.value) == "UNAUTHENTICATED"
            assert TOKEN_ALL not in str(refused.value.details())


async def test_tokens_grant_their_rights_only(token_server: LiveServer) -> None:
    async with aio.insecure_channel(token_server.address) as channel:
        assert await generate_text(channel, bearer(TOKEN_ALL))
        events = await session_events(channel, bearer(TOKEN_ALL))
        assert events[0] == "started" and events[-1] == "finished"
        assert (await model_info(channel, bearer(TOKEN_MODEL_ONLY))).engine == "sim"
        # The scheme is case-insensitive, as HTTP's is.
        assert (await model_info(channel, (("authorization", f"bearer {TOKEN_ALL}"),))).engine == "sim"
        for call in (generate_text, session_events):
            with pytest.raises(aio.AioRpcError) as denied:
                await call(channel, bearer(TOKEN_MODEL_ONLY))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_reason(denied.value) == "PERMISSION_DENIED"
            assert "'generate'" in str(denied.value.details())
        # Configured as sha256:<hex> with the generate right only.
        assert await generate_text(channel, bearer(SHA_ONLY_TOKEN))
        with pytest.raises(aio.AioRpcError) as denied:
            await model_info(channel, bearer(SHA_ONLY_TOKEN))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_methods_need_a_token_before_they_are_unimplemented(token_server: LiveServer) -> None:
    async with aio.insecure_channel(token_server.address) as channel:
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (
                bearer(TOKEN_MODEL_ONLY),
                grpc.StatusCode.UNIMPLEMENTED,
            ),
        ):
            unknown: aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                "/tokenwire.v1.Nope/Nothing"
            )
            with pytest.raises(aio.AioRpcError) as refused:
                await unknown(b"", metadata=metadata, timeout=30)
            assert refused.value.code() == code


async def health_check(channel: aio.Channel, metadata: Metadata = ()) -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=30)
    assert isinstance(response, health_pb2.HealthCheckResponse)
    return response.status


async def list_services(channel: aio.Channel, metadata: Metadata = ()) -> list[str]:
    """Reflection's service list, asked over its bidirectional stream (v1alpha, as grpcurl 1.8 asks)."""
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = info(metadata=metadata, timeout=30)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    assert isinstance(response, reflection_pb2.ServerReflectionResponse)
    return [s.name for s in response.list_services_response.service]


@pytest.mark.parametrize(
    ("auth_open", "health_open", "reflection_open"),
    [(("health",), True, False), ((), False, False), (("reflection",), False, True)],
    ids=["default", "none", "reflection"],
)
async def test_open_services(
    tokens_file: Path,
    auth_open: tuple[OpenServiceName, ...],
    health_open: bool,
    reflection_open: bool,
) -> None:
    for live in running(sim_config(auth_tokens_file=tokens_file, auth_open=auth_open)):
        async with aio.insecure_channel(live.address) as channel:
            assert await health_check(channel, bearer(TOKEN_ALL)) == health_pb2.HealthCheckResponse.SERVING
            assert "tokenwire.v1.GenerationService" in await list_services(channel, bearer(TOKEN_ALL))
            for call, is_open in ((health_check, health_open), (list_services, reflection_open)):
                if is_open:
                    await call(channel)
                    continue
                with pytest.raises(aio.AioRpcError) as refused:
                    await call(channel)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # An open service is open to everyone; the others still need their right.
            with pytest.raises(aio.AioRpcError) as refused:
                await model_info(channel)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(SHA_ONLY_TOKEN.encode()).hexdigest()
    monkeypatch.setenv("TW_TEST_TOKENS", f"{TOKEN_ALL};  sha256:{digest} model\n{TOKEN_MODEL_ONLY} model")
    for live in running(sim_config(auth_tokens_env="TW_TEST_TOKENS")):
        async with aio.insecure_channel(live.address) as channel:
            assert await generate_text(channel, bearer(TOKEN_ALL))
            assert (await model_info(channel, bearer(SHA_ONLY_TOKEN))).engine == "sim"
            with pytest.raises(aio.AioRpcError) as denied:
                await generate_text(channel, bearer(TOKEN_MODEL_ONLY))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_tls_and_tokens_together(pki: TestPki, tokens_file: Path) -> None:
    config = sim_config(
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_cert,
        auth_tokens_file=tokens_file,
    )
    for live in running(config):
        credentials = tls_credentials(pki, client=(pki.client_cert, pki.client_key))
        async with aio.secure_channel(localhost(live), credentials) as channel:
            assert await generate_text(channel, bearer(TOKEN_ALL))
            with pytest.raises(aio.AioRpcError) as refused:
                await generate_text(channel)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- Start-up checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("secret-one all\nsecret-two everything\n", 2, "unknown right"),
        ("# comment\n\nsha256:abc123 all\n", 3, "64 lowercase hex"),
        ("sha256:" + "A" * 64 + "\n", 1, "64 lowercase hex"),
        ("secret one two\n", 1, "whitespace"),
        ("ok-token\nsecret-\u00e9t\u00e9\n", 2, "printable ASCII"),
        ("x" * (MAX_TOKEN_BYTES + 1), 1, "at most"),
    ],
    ids=["right", "short-hex", "upper-hex", "whitespace", "non-ascii", "long"],
)
def test_bad_token_entries_name_the_line_and_never_the_token(text: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigError) as failed:
        parse_entries(text, "tokens.txt")
    message = str(failed.value)
    assert f"tokens.txt line {line}:" in message and problem in message
    for secret in ("secret", "everything", "abc123", "AAAA", "xxxx"):
        assert secret not in message.replace("tokens.txt", "")


def test_token_sources_must_hold_entries(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n\n")
    for config, environ, problem in (
        (ServeConfig(auth_tokens_file=empty), {}, "no token entries"),
        (ServeConfig(auth_tokens_file=tmp_path / "missing"), {}, "cannot read"),
        (ServeConfig(auth_tokens_env="TW_TOKENS"), {}, "not set"),
        (ServeConfig(auth_tokens_env="TW_TOKENS"), {"TW_TOKENS": " ; ;"}, "no token entries"),
        (ServeConfig(auth_tokens_env="TW_TOKENS"), {"TW_TOKENS": "a;b c d"}, "entry 2"),
    ):
        with pytest.raises(ConfigError, match=problem):
            load_policy(config, environ)
    assert load_policy(ServeConfig(), {}) is None


def test_presented_tokens_match_by_digest_only() -> None:
    digest = hashlib.sha256(b"abc").hexdigest()
    policy = load_policy(ServeConfig(auth_tokens_env="T", auth_open=()), {"T": f"sha256:{digest} health"})
    assert isinstance(policy, TokenPolicy)
    assert policy.authorize(bearer("abc"), Right.HEALTH) is None
    assert policy.authorize(bearer(f"sha256:{digest}"), Right.HEALTH) is not None  # the hash is no token


def test_serve_refuses_bad_token_files_and_tls_pairs(tmp_path: Path, pki: TestPki) -> None:
    bad = tmp_path / "tokens"
    bad.write_text("good-token all\nvery-secret-token admin\n")
    serve = [sys.executable, "-m", "service.cli", "serve", "--engine", "sim", "--port", "0"]
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["--auth-tokens-file", str(bad)], {}, "line 2"),
        ([], {"TOKENWIRE_AUTH_TOKENS_FILE": str(bad)}, "line 2"),
        (["--auth-tokens-env", "TW_T"], {"TW_T": "ok-token;very-secret-token admin"}, "entry 2"),
        (["--tls-cert", str(pki.server_cert)], {}, "--tls-key"),
        ([], {"TOKENWIRE_TLS_KEY": str(pki.server_key)}, "--tls-cert"),
        (["--tls-client-ca", str(pki.ca_cert)], {}, "--tls-client-ca needs --tls-cert"),
        (["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)], {}, "not a matching"),
        (["--auth-open", "generate"], {}, "--auth-open"),
        ([], {"TOKENWIRE_AUTH_OPEN": "health,bogus"}, "TOKENWIRE_AUTH_OPEN"),
    ]
    for args, env, problem in cases:
        done = subprocess.run(
            [*serve, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, **env},
        )
        assert done.returncode != 0, (args, env, done.stderr)
        assert problem in done.stderr, done.stderr
        assert "very-secret-token" not in done.stderr and "admin" not in done.stderr


def test_non_loopback_listeners_without_protection_are_flagged() -> None:
    assert listener_risks("127.0.0.1", tls=False, client_certificates=False, tokens=False) == ()
    assert listener_risks("localhost", tls=False, client_certificates=False, tokens=False) == ()
    assert listener_risks("[::1]", tls=False, client_certificates=False, tokens=False) == ()
    assert len(listener_risks("0.0.0.0", tls=False, client_certificates=False, tokens=False)) == 2
    assert len(listener_risks("10.1.2.3", tls=True, client_certificates=False, tokens=False)) == 1
    assert len(listener_risks("::", tls=False, client_certificates=False, tokens=True)) == 1
    assert listener_risks("0.0.0.0", tls=True, client_certificates=True, tokens=False) == ()
    assert listener_risks("example.org", tls=True, client_certificates=False, tokens=True) == ()


def serve_events_until_ready(*args: str) -> list[dict[str, object]]:
    """``tokenwire serve --engine sim`` with ``args``: JSON log records up to model_ready; then stops it."""
    serve = [sys.executable, "-m", "service.cli", "serve", "--engine", "sim", "--port", "0"]
    process = subprocess.Popen(
        [*serve, "--log-format", "json", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    records: list[dict[str, object]] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("{"):
                records.append(json.loads(line))
                if records[-1].get("event") == "model_ready":
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert records and records[-1].get("event") == "model_ready", records
    return records


def test_a_plaintext_wildcard_listener_logs_a_warning() -> None:
    records = serve_events_until_ready("--host", "0.0.0.0")
    warnings = [r for r in records if r.get("event") == "insecure_listener"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning", records
    assert len(warnings[0]["risks"]) == 2  # type: ignore[arg-type]  # a JSON list


def test_the_default_loopback_listener_logs_no_warning() -> None:
    records = serve_events_until_ready()
    assert not [r for r in records if r.get("event") == "insecure_listener"], records
    listening = next(r for r in records if r.get("event") == "server_listening")
    assert listening["tls"] is False and listening["token_auth"] is False


async def test_the_secure_live_server_fixture_serves_the_real_model(
    secure_live_server: SecureLiveServer,
) -> None:
    pki = secure_live_server.pki
    credentials = tls_credentials(pki, client=(pki.client_cert, pki.client_key))
    async with aio.secure_channel(secure_live_server.address, credentials) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        request = generation_pb2.GenerateRequest(
            chat=generation_pb2.Chat(
                messages=[generation_pb2.ChatMessage(role="user", content="What is the capital of France?")]
            ),
            sampling=generation_pb2.SamplingParams(temperature=0.0),
        )
        result = await collect(
            stub.Generate(request, metadata=bearer(secure_live_server.token_all), timeout=120)
        )
        assert "Paris" in result.text
        with pytest.raises(aio.AioRpcError) as denied:
            await collect(stub.Generate(request, metadata=bearer(secure_live_server.token_model_only)))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await health_check(channel)) == health_pb2.HealthCheckResponse.SERVING


async def test_a_refused_stream_ends_even_if_the_caller_never_writes(token_server: LiveServer) -> None:
    async with aio.insecure_channel(token_server.address) as channel:
        call = generation_pb2_grpc.GenerationServiceStub(channel).Session(timeout=30)
        with pytest.raises(aio.AioRpcError) as refused:
            await call.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_rejections_are_logged_rate_limited_and_without_the_token(tmp_path: Path) -> None:
    secret = "tw-probe-secret-4242"
    tokens = write_tokens_file(tmp_path / "tokens")
    serve = [sys.executable, "-m", "service.cli", "serve", "--engine", "sim", "--port", "0"]
    process = subprocess.Popen(
        [*serve, "--log-format", "json", "--auth-tokens-file", str(tokens)], stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    port = None
    for line in process.stderr:
        record = json.loads(line) if line.startswith("{") else {}
        port = record.get("port", port)
        if record.get("event") == "model_ready":
            break
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = channel.unary_unary(
                "/tokenwire.v1.ModelService/GetModelInfo",
                request_serializer=model_pb2.GetModelInfoRequest.SerializeToString,
                response_deserializer=model_pb2.GetModelInfoResponse.FromString,
            )
            for _ in range(30):
                with pytest.raises(grpc.RpcError) as refused:
                    info(model_pb2.GetModelInfoRequest(), metadata=tuple(bearer(secret)), timeout=30)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    assert secret not in rest
    rejected = [json.loads(line) for line in rest.splitlines() if '"auth_rejected"' in line]
    assert 1 <= len(rejected) <= 10, rest  # a burst of 10, then held back
    assert rejected[0]["reason"] == "unknown bearer token" and rejected[0]["level"] == "info"


def test_the_generate_command_speaks_tls_and_sends_the_token(secure_live_server: SecureLiveServer) -> None:
    """``tokenwire generate`` reads the same variables as the client examples."""
    question = "What is the capital of France?"
    command = [sys.executable, "-m", "service.cli", "generate", question, "--temperature", "0"]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWIRE_")}
    for token, code in ((secure_live_server.token_all, 0), (None, 1)):
        env = {**inherited, **secure_env(secure_live_server, token)}
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)
        assert done.returncode == code, done.stderr
        assert ("Paris" in done.stdout) if code == 0 else ("UNAUTHENTICATED" in done.stderr)


async def test_a_refused_call_of_an_unknown_method_is_counted_without_its_name(tokens_file: Path) -> None:
    """With token auth and metrics both on, a caller without a token calling made-up methods must
    not mint a ``method`` label per name: the refusal is counted as ``method="unknown"``."""
    for live in running(sim_config(auth_tokens_file=tokens_file, metrics_port=0)):
        async with aio.insecure_channel(live.address) as channel:
            for n in range(3):
                made_up: aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/evil.Svc/Name{n}")
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await made_up(b"")
                assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
        text = await asyncio.to_thread(scrape_text, live)
        assert "evil" not in text and "Name0" not in text
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        counted = (("code", "UNAUTHENTICATED"), ("method", "unknown"))
        assert samples.get(("tokenwire_rpcs_total", counted)) == 3
