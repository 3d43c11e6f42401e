"""The Rust client's examples, built by clients/rust/ci.sh (target/debug/examples), against a live server."""

from __future__ import annotations

from tests.client_examples import CLIENTS, check_session_output, check_stream_output, run_example
from tests.conftest import LiveServer

EXAMPLES = CLIENTS / "rust" / "target" / "debug" / "examples"


def test_stream_example(live_server: LiveServer) -> None:
    command = [str(EXAMPLES / "stream"), "What is the capital of France?"]
    check_stream_output(run_example(command, live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example([str(EXAMPLES / "session")], live_server))
