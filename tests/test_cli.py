"""The ``tokenwire`` command line, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveServer

TOKENWIRE = str(Path(sys.executable).parent / "tokenwire")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOKENWIRE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_help_on_every_command() -> None:
    top = run("--help")
    assert top.returncode == 0 and "serve" in top.stdout and "generate" in top.stdout
    serve = run("serve", "--help")
    assert serve.returncode == 0
    text = " ".join(serve.stdout.split())  # argparse wraps lines
    assert "TOKENWIRE_PORT" in text and "TOKENWIRE_MAX_BATCH_SIZE" in text
    assert "default: 127.0.0.1" in text and "default: 50051" in text
    generate = run("generate", "--help")
    assert generate.returncode == 0 and "--max-tokens" in generate.stdout


def test_invalid_environment_value_is_a_clear_error() -> None:
    done = run("serve", "--help", env={"TOKENWIRE_MAX_BATCH_SIZE": "zero"})
    assert done.returncode != 0
    assert "TOKENWIRE_MAX_BATCH_SIZE" in done.stderr


def test_generate_streams_to_stdout(live_server: LiveServer) -> None:
    done = run(
        "generate",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--stats",
        env={"TOKENWIRE_TARGET": live_server.address},
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert "FINISH_REASON_END_OF_SEQUENCE" in done.stderr


def test_generate_reports_errors_with_the_status(live_server: LiveServer) -> None:
    done = run("generate", "hi", "--top-p", "7", "--target", live_server.address)
    assert done.returncode == 1
    assert "INVALID_ARGUMENT" in done.stderr and "sampling.top_p" in done.stderr
