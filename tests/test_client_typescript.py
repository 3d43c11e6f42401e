"""The TypeScript client's examples, compiled by clients/typescript/ci.sh to dist/, against a live server."""

from __future__ import annotations

from tests.client_examples import CLIENTS, check_session_output, check_stream_output, run_example
from tests.conftest import LiveServer

HERE = CLIENTS / "typescript"


def test_stream_example(live_server: LiveServer) -> None:
    command = ["node", "dist/examples/stream.js", "What is the capital of France?"]
    check_stream_output(run_example(command, live_server, cwd=HERE))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example(["node", "dist/examples/session.js"], live_server, cwd=HERE))
