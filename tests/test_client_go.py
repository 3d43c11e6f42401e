"""The Go client's examples (clients/go/examples) against the live server.

They run as binaries built by clients/go/ci.sh into clients/go/.bin (``make test``
runs it before pytest); the tests fail when they have not been built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import LiveServer

GO_BIN = Path(__file__).resolve().parent.parent / "clients" / "go" / ".bin"
RESULT_LINE = re.compile(r'^(?P<id>\S+) (?P<reason>FINISH_REASON_[A-Z_]+) (?P<tokens>\d+) (?P<text>".*")$')


def run_example(name: str, live_server: LiveServer) -> str:
    binary = GO_BIN / name
    assert binary.is_file(), f"{binary} is not built: run clients/go/ci.sh (make clients)"
    done = subprocess.run(
        [str(binary)],
        env={**os.environ, "TOKENWIRE_TARGET": live_server.address},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_stream_example_answers_the_question(live_server: LiveServer) -> None:
    assert "Paris" in run_example("stream", live_server)


def test_session_example_cancels_one_of_two(live_server: LiveServer) -> None:
    lines = run_example("session", live_server).splitlines()
    assert len(lines) == 2, lines
    results = {}
    for line in lines:
        match = RESULT_LINE.match(line)
        assert match is not None, line
        text = json.loads(match["text"])
        assert isinstance(text, str)
        results[match["id"]] = (match["reason"], int(match["tokens"]), text)

    assert set(results) == {"keep", "drop"}
    keep_reason, keep_tokens, keep_text = results["keep"]
    assert keep_reason in {"FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE"}
    assert keep_tokens > 0
    assert keep_text
    drop_reason, drop_tokens, _ = results["drop"]
    assert drop_reason == "FINISH_REASON_CANCELLED"
    assert 0 < drop_tokens < 32
