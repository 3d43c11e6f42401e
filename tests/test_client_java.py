"""The Java client's examples, built by clients/java/ci.sh (target/classes, target/classpath.txt)."""

from __future__ import annotations

from tests.client_examples import (
    CLIENTS,
    check_samples_output,
    check_secure_stream_example,
    check_session_output,
    check_stream_output,
    check_structured_output,
    run_example,
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
    check_secure_stream_example(stream(), secure_live_server)


def test_structured_example(live_server: LiveServer) -> None:
    check_structured_output(run_example(java("dev.tokenwire.examples.StructuredExample"), live_server))


def test_samples_example(live_server: LiveServer) -> None:
    check_samples_output(run_example(java("dev.tokenwire.examples.SamplesExample"), live_server))
