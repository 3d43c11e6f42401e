"""What every client's two examples must print, checked the same way for each language.

``stream`` prints the completion of the France question; ``session`` starts
``keep`` and ``drop`` on one Session stream, cancels ``drop`` after its first
delta, and prints one line per generation:
``<request_id> <FINISH_REASON_NAME> <completion_tokens> <text as a JSON string>``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from tokenwire.v1 import generation_pb2, generation_pb2_grpc, model_pb2, model_pb2_grpc

from tests.conftest import SecureLiveServer
from tests.live_servers import LiveServer

REPO = Path(__file__).resolve().parent.parent
CLIENTS = REPO / "clients"
SESSION_LINE = re.compile(r'^(?P<id>\S+) (?P<reason>FINISH_REASON_[A-Z_]+) (?P<tokens>\d+) (?P<text>".*")$')
FINISHED_NORMALLY = {"FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE"}


@dataclass(frozen=True, slots=True)
class SessionLine:
    reason: str
    completion_tokens: int
    text: str


def _run(
    command: Sequence[str], server: LiveServer | SecureLiveServer, cwd: Path | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    # The caller's TOKENWIRE_* settings must not leak into an example run.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWIRE_")}
    return subprocess.run(
        list(command),
        cwd=cwd,
        env={**inherited, "TOKENWIRE_TARGET": server.address, **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
        check=False,
    )


def java_example(main_class: str) -> list[str]:
    """The command that runs one of the Java client's examples, built by clients/java/ci.sh: the
    library in target/classes, the examples (compiled with the tests, not in the library jar) in
    target/test-classes, the dependencies listed in target/classpath.txt."""
    java = CLIENTS / "java"
    dependencies = (java / "target" / "classpath.txt").read_text().strip()
    classes = f"{java / 'target' / 'classes'}:{java / 'target' / 'test-classes'}"
    return ["java", "-cp", f"{classes}:{dependencies}", main_class]


def run_example(
    command: Sequence[str],
    live_server: LiveServer | SecureLiveServer,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run one example against the live server, ``env`` added; its stdout (it must exit 0)."""
    done = _run(command, live_server, cwd, env or {})
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr}"
    return done.stdout


def secure_env(server: SecureLiveServer, token: str | None) -> dict[str, str]:
    """The examples' TLS settings for ``server`` (its CA, the accepted client certificate) and ``token``."""
    pki = server.pki
    env = {
        "TOKENWIRE_TARGET": server.address,
        "TOKENWIRE_TLS_CA": str(pki.ca_cert),
        "TOKENWIRE_CLIENT_CERT": str(pki.client_cert),
        "TOKENWIRE_CLIENT_KEY": str(pki.client_key),
    }
    return env if token is None else {**env, "TOKENWIRE_TOKEN": token}


def check_secure_stream_example(
    command: Sequence[str], server: SecureLiveServer, *, cwd: Path | None = None
) -> None:
    """The stream example over mTLS: Paris with the all-rights token, UNAUTHENTICATED without a
    token, PERMISSION_DENIED with the model-only token (each failure a non-zero exit)."""
    done = _run(command, server, cwd, secure_env(server, server.token_all))
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr}"
    check_stream_output(done.stdout)
    for token, code in ((None, "UNAUTHENTICATED"), (server.token_model_only, "PERMISSION_DENIED")):
        refused = _run(command, server, cwd, secure_env(server, token))
        assert refused.returncode != 0, f"{command} with token {token!r} exited 0: {refused.stdout}"
        assert code in refused.stderr, refused.stderr
        assert "Paris" not in refused.stdout


def check_stream_output(stdout: str) -> None:
    assert "Paris" in stdout, stdout


def parse_session_output(stdout: str) -> dict[str, SessionLine]:
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    parsed: dict[str, SessionLine] = {}
    for line in lines:
        match = SESSION_LINE.match(line)
        assert match is not None, line
        text = json.loads(match["text"])
        assert isinstance(text, str)
        parsed[match["id"]] = SessionLine(match["reason"], int(match["tokens"]), text)
    return parsed


def check_session_output(stdout: str) -> None:
    """``drop`` was cancelled mid-stream; ``keep`` finished normally with text."""
    parsed = parse_session_output(stdout)
    assert parsed.keys() == {"keep", "drop"}, stdout
    keep, drop = parsed["keep"], parsed["drop"]
    assert keep.reason in FINISHED_NORMALLY, stdout
    assert keep.completion_tokens > 0 and keep.text.strip(), stdout
    assert drop.reason == "FINISH_REASON_CANCELLED", stdout
    assert drop.completion_tokens > 0, "drop is cancelled after its first delta"


# --- structured and samples: what each client's third and fourth examples print -------------------

STRUCTURED_PROMPT = "Ada Lovelace was born in 1815 in London. Extract the person as JSON."
"""The ``structured`` example's chat user message (temperature 0, max_tokens 64), with this schema."""
STRUCTURED_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "birth_year": {"type": "integer", "minimum": 1000, "maximum": 2100},
        "city": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "birth_year", "city"],
    "additionalProperties": False,
}
SAMPLE_LINE = re.compile(r'^(?P<index>\d+) (?P<reason>FINISH_REASON_[A-Z_]+) (?P<tokens>\d+) (?P<text>".*")$')


def check_structured_output(stdout: str) -> None:
    """Two lines: the JSON the deltas' text makes up, then the finish reason's name."""
    lines = stdout.splitlines()
    assert len(lines) == 2, stdout
    value = json.loads(lines[0])
    assert isinstance(value, dict) and set(value) == {"name", "birth_year", "city"}, stdout
    assert isinstance(value["name"], str) and len(value["name"]) <= 40
    assert isinstance(value["birth_year"], int) and 1000 <= value["birth_year"] <= 2100
    assert isinstance(value["city"], str) and len(value["city"]) <= 40
    assert lines[1] in ("FINISH_REASON_END_OF_SEQUENCE", "FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE"), stdout


def check_samples_output(stdout: str) -> None:
    """n = 3: one line per sample in index order, ``<index> <REASON> <completion_tokens> <text as a
    JSON string>``, then ``prompt_tokens <Started.prompt_tokens> <sum of the finished events'
    usage.prompt_tokens>`` (the prompt is counted once)."""
    lines = stdout.splitlines()
    assert len(lines) == 4, stdout
    texts = []
    for expected, line in enumerate(lines[:3]):
        match = SAMPLE_LINE.match(line)
        assert match is not None, line
        assert int(match["index"]) == expected, stdout
        assert match["reason"] in FINISHED_NORMALLY, stdout
        text = json.loads(match["text"])
        assert isinstance(text, str) and int(match["tokens"]) > 0
        texts.append(text)
    assert len(set(texts)) > 1, f"sampled answers should differ: {stdout}"
    label, started, summed = lines[3].split()
    assert label == "prompt_tokens" and int(started) == int(summed) > 0, stdout


# --- retry: what each client's retry example prints ------------------------------------------------

RETRY_HOLD_S = 4.0
"""How long a generation holds the busy server's one slot before the harness cancels it: longer
than any example takes to start and send its first request, and within its retries (the server's
RetryInfo says ~1 s; the examples try up to 10 times)."""


def run_while_busy(
    command: Sequence[str],
    server: LiveServer,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run an example while another generation holds the busy sim server's only slot for
    ``RETRY_HOLD_S`` (so the example's first Generate is refused with RESOURCE_EXHAUSTED and
    RetryInfo, and a retry succeeds once the slot is free); its stdout."""
    with grpc.insecure_channel(server.address) as channel:
        generation = generation_pb2_grpc.GenerationServiceStub(channel)
        model = model_pb2_grpc.ModelServiceStub(channel)
        blocker = generation_pb2.GenerateRequest(
            text="hold the slot", stopping=generation_pb2.StoppingCriteria(max_tokens=4000, ignore_eos=True)
        )
        call = generation.Generate(blocker)

        def drain() -> None:
            try:
                for _ in call:
                    pass
            except grpc.RpcError:
                pass  # cancelled by the timer, as intended

        holder = threading.Thread(target=drain, daemon=True)
        holder.start()
        deadline = time.monotonic() + 10
        while model.GetLoad(model_pb2.GetLoadRequest()).active_requests < 1:
            assert time.monotonic() < deadline, "the blocker never took the slot"
            time.sleep(0.01)
        release = threading.Timer(RETRY_HOLD_S, call.cancel)
        release.start()
        try:
            return run_example(command, server, cwd=cwd, env=env)
        finally:
            release.cancel()
            call.cancel()
            holder.join(timeout=30)


def check_retry_output(stdout: str) -> None:
    """Three lines: ``attempts <n>`` (n >= 2: the first was refused, RESOURCE_EXHAUSTED, and
    retried after the server's RetryInfo delay), ``completion_tokens <k>`` (k > 0), and
    ``violation sampling.top_p <description>`` read from the INVALID_ARGUMENT of a request with
    top_p = 5."""
    lines = stdout.splitlines()
    assert len(lines) == 3, stdout
    label, attempts = lines[0].split()
    assert label == "attempts" and int(attempts) >= 2, stdout
    label, tokens = lines[1].split()
    assert label == "completion_tokens" and int(tokens) > 0, stdout
    label, field, description = lines[2].split(" ", 2)
    assert label == "violation" and field == "sampling.top_p" and "(0, 1]" in description, stdout
