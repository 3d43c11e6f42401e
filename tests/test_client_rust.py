"""The Rust client's examples, built by clients/rust/ci.sh (target/debug/examples), against a live server."""

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

EXAMPLES = CLIENTS / "rust" / "target" / "debug" / "examples"


def test_stream_example(live_server: LiveServer) -> None:
    command = [str(EXAMPLES / "stream"), "What is the capital of France?"]
    check_stream_output(run_example(command, live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example([str(EXAMPLES / "session")], live_server))


def test_structured_example(live_server: LiveServer) -> None:
    """JSON Schema structured output: the JSON, then the finish reason's name."""
    check_structured_output(run_example([str(EXAMPLES / "structured")], live_server))


def test_samples_example(live_server: LiveServer) -> None:
    """n = 3 samples of one prompt, one line each in index order, and the prompt counted once."""
    check_samples_output(run_example([str(EXAMPLES / "samples")], live_server))


def test_stream_example_over_mtls_with_token(secure_live_server: SecureLiveServer) -> None:
    """CA + client certificate + the all-rights token: Paris; no token: UNAUTHENTICATED;
    the model-only token: PERMISSION_DENIED."""
    check_secure_stream_example(
        [str(EXAMPLES / "stream"), "What is the capital of France?"], secure_live_server
    )


def test_retry_example(busy_sim_server: LiveServer) -> None:
    """RESOURCE_EXHAUSTED with RetryInfo from the busy server is retried (attempts >= 2), and the
    INVALID_ARGUMENT of top_p = 5 is read as a field violation of sampling.top_p."""
    check_retry_output(run_while_busy([str(EXAMPLES / "retry")], busy_sim_server))
