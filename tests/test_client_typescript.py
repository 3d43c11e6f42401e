"""The TypeScript client's examples (clients/typescript), run against a live server.

Build first with ``clients/typescript/ci.sh`` (it compiles the examples to
``clients/typescript/dist``); this test only runs them with node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import LiveServer

CLIENT_DIR = Path(__file__).resolve().parent.parent / "clients" / "typescript"
EXAMPLES = CLIENT_DIR / "dist" / "examples"
NODE = shutil.which("node")
SESSION_LINE = re.compile(r'^(?P<id>\S+) (?P<reason>FINISH_REASON_[A-Z_]+) (?P<tokens>\d+) (?P<text>".*")$')


def run_example(name: str, live_server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    script = EXAMPLES / f"{name}.js"
    assert script.is_file(), f"{script} is missing: run clients/typescript/ci.sh first"
    assert NODE is not None
    return subprocess.run(
        [NODE, str(script), *args],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "TOKENWIRE_TARGET": live_server.address},
    )


def test_stream_example_prints_the_answer(live_server: LiveServer) -> None:
    done = run_example("stream", live_server, "What is the capital of France?")
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


def test_session_example_cancels_one_generation(live_server: LiveServer) -> None:
    done = run_example("session", live_server)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    parsed = []
    for line in lines:
        match = SESSION_LINE.match(line)
        assert match is not None, line
        text = json.loads(match["text"])
        assert isinstance(text, str)
        parsed.append((match["id"], match["reason"], int(match["tokens"]), text))
    assert len({request_id for request_id, *_ in parsed}) == 2
    cancelled = [p for p in parsed if p[1] == "FINISH_REASON_CANCELLED"]
    finished = [p for p in parsed if p[1] in ("FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE")]
    assert len(cancelled) == 1 and len(finished) == 1, done.stdout
    _, _, tokens, text = finished[0]
    assert tokens > 0 and text.strip()
