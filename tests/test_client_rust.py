"""The Rust client's examples (clients/rust/examples) against the live server.

They run as binaries built by clients/rust/ci.sh into clients/rust/target/debug/examples
(``make test`` runs it before pytest); the tests fail when they have not been built.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import LiveServer

EXAMPLES = Path(__file__).resolve().parent.parent / "clients" / "rust" / "target" / "debug" / "examples"
NORMAL_FINISH = {"FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE"}


def example(name: str) -> Path:
    binary = EXAMPLES / name
    assert binary.is_file(), f"{binary} is not built: run clients/rust/ci.sh (make clients)"
    return binary


def run_example(name: str, server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(example(name)), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "TOKENWIRE_TARGET": server.address},
    )
    assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def test_stream_answers_the_france_question(live_server: LiveServer) -> None:
    result = run_example("stream", live_server, "What is the capital of France?")
    assert "Paris" in result.stdout


def test_session_cancels_one_of_two_generations(live_server: LiveServer) -> None:
    result = run_example("session", live_server)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    outcomes: dict[str, tuple[str, int, str]] = {}
    for line in lines:
        request_id, reason, tokens, text = line.split(" ", 3)
        decoded = json.loads(text)
        assert isinstance(decoded, str)
        outcomes[request_id] = (reason, int(tokens), decoded)
    assert set(outcomes) == {"keep", "drop"}

    keep_reason, keep_tokens, keep_text = outcomes["keep"]
    assert keep_reason in NORMAL_FINISH
    assert keep_tokens > 0
    assert keep_text

    drop_reason, drop_tokens, _ = outcomes["drop"]
    assert drop_reason == "FINISH_REASON_CANCELLED"
    assert drop_tokens < 32
