"""The TypeScript client's examples, compiled by clients/typescript/ci.sh to dist/, against a live server."""

from __future__ import annotations

from tests.client_examples import (
    CLIENTS,
    check_retry_output,
    check_samples_output,
    check_secure_stream_example,
    check_session_output,
    check_stream_output,
    check_structured_output,
    run_example,
    run_while_busy,
)
from tests.conftest import SecureLiveServer
from tests.live_servers import LiveServer

HERE = CLIENTS / "typescript"
STREAM = ["node", "dist/examples/stream.js", "What is the capital of France?"]


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example(STREAM, live_server, cwd=HERE))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example(["node", "dist/examples/session.js"], live_server, cwd=HERE))


def test_structured_example(live_server: LiveServer) -> None:
    check_structured_output(run_example(["node", "dist/examples/structured.js"], live_server, cwd=HERE))


def test_samples_example(live_server: LiveServer) -> None:
    check_samples_output(run_example(["node", "dist/examples/samples.js"], live_server, cwd=HERE))


def test_retry_example(busy_sim_server: LiveServer) -> None:
    check_retry_output(run_while_busy(["node", "dist/examples/retry.js"], busy_sim_server, cwd=HERE))


def test_stream_example_over_mtls_with_a_token(secure_live_server: SecureLiveServer) -> None:
    check_secure_stream_example(STREAM, secure_live_server, cwd=HERE)
