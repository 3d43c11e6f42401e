"""The Go client's examples, built by clients/go/ci.sh into clients/go/.bin, against a live server."""

from __future__ import annotations

from tests.client_examples import CLIENTS, check_session_output, check_stream_output, run_example
from tests.conftest import LiveServer

BIN = CLIENTS / "go" / ".bin"


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example([str(BIN / "stream")], live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example([str(BIN / "session")], live_server))
