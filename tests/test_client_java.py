"""The Java client's examples (clients/java), run against a live server.

clients/java/ci.sh builds them first (``make test`` runs it before pytest) and
writes target/classpath.txt; without that build these tests fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import LiveServer

JAVA_DIR = Path(__file__).resolve().parent.parent / "clients" / "java"
CLASSES = JAVA_DIR / "target" / "classes"
CLASSPATH_FILE = JAVA_DIR / "target" / "classpath.txt"
SESSION_LINE = re.compile(r"^(\S+) (FINISH_REASON_[A-Z_]+) (\d+) (\".*\")$")


def run_example(main_class: str, live_server: LiveServer) -> subprocess.CompletedProcess[str]:
    assert shutil.which("java") is not None, "java is not installed"
    built = CLASSPATH_FILE.is_file() and (CLASSES / "dev" / "tokenwire" / "examples").is_dir()
    assert built, "the Java client is not built: run clients/java/ci.sh (make clients)"
    classpath = os.pathsep.join([str(CLASSES), CLASSPATH_FILE.read_text().strip()])
    return subprocess.run(
        ["java", "-cp", classpath, main_class],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        env={**os.environ, "TOKENWIRE_TARGET": live_server.address},
    )


def test_stream_example_prints_the_completion(live_server: LiveServer) -> None:
    done = run_example("dev.tokenwire.examples.StreamExample", live_server)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


def test_session_example_cancels_one_of_two_generations(live_server: LiveServer) -> None:
    done = run_example("dev.tokenwire.examples.SessionExample", live_server)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    results: dict[str, tuple[str, int, str]] = {}
    for line in lines:
        match = SESSION_LINE.match(line)
        assert match is not None, line
        request_id, reason, tokens, text = match.groups()
        decoded = json.loads(text)
        assert isinstance(decoded, str)
        results[request_id] = (reason, int(tokens), decoded)
    assert set(results) == {"keep", "drop"}
    reasons = sorted(reason for reason, _, _ in results.values())
    assert reasons[0] == "FINISH_REASON_CANCELLED", results
    assert reasons[1] in {"FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE"}, results
    # The cancelled one was cancelled after its first delta; the other ran to its end with text.
    assert all(tokens > 0 for _, tokens, _ in results.values()), results
    finished = next(result for result in results.values() if result[0] != "FINISH_REASON_CANCELLED")
    assert finished[2].strip(), results
