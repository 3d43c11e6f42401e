"""The Java client's examples, built by clients/java/ci.sh (target/classes, target/classpath.txt)."""

from __future__ import annotations

from tests.client_examples import (
    CLIENTS,
    check_session_output,
    check_stream_output,
    run_example,
    run_failing_example,
    secure_env,
)
from tests.conftest import LiveServer, SecureLiveServer

HERE = CLIENTS / "java"


def java(main_class: str) -> list[str]:
    dependencies = (HERE / "target" / "classpath.txt").read_text().strip()
    return ["java", "-cp", f"{HERE / 'target' / 'classes'}:{dependencies}", main_class]


def stream() -> list[str]:
    return [*java("dev.tokenwire.examples.StreamExample"), "What is the capital of France?"]


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example(java("dev.tokenwire.examples.StreamExample"), live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example(java("dev.tokenwire.examples.SessionExample"), live_server))


def test_stream_example_over_mtls_with_a_token(secure_live_server: SecureLiveServer) -> None:
    env = secure_env(secure_live_server, secure_live_server.token_all)
    check_stream_output(run_example(stream(), secure_live_server, env=env))


def test_stream_example_without_a_token_is_unauthenticated(secure_live_server: SecureLiveServer) -> None:
    stderr = run_failing_example(stream(), secure_live_server, env=secure_env(secure_live_server, None))
    assert "UNAUTHENTICATED" in stderr, stderr


def test_stream_example_with_a_model_only_token_is_denied(secure_live_server: SecureLiveServer) -> None:
    env = secure_env(secure_live_server, secure_live_server.token_model_only)
    stderr = run_failing_example(stream(), secure_live_server, env=env)
    assert "PERMISSION_DENIED" in stderr, stderr
