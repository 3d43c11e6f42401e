"""The grpcurl and buf curl recipes of docs/grpcurl.md, run as written against a live server.

Every ``sh`` block of the doc follows a ``<!-- recipe: NAME -->`` marker; the
test runs each block with bash from the repository root, with the doc's
address (127.0.0.1:50051) replaced by the live server's, and checks its
output. The ``tls-`` recipes dial ``localhost:50051`` and read the client
examples' TLS and token variables; they run against the mTLS + token server.
A recipe added to the doc without a check here (or removed from it) fails
the test, so the doc cannot drift.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.client_examples import secure_env
from tests.conftest import SecureLiveServer
from tests.live_servers import LiveServer

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "grpcurl.md"
DOC_ADDRESS = "127.0.0.1:50051"
TLS_DOC_ADDRESS = "localhost:50051"
BLOCK = re.compile(r"<!-- recipe: ([\w-]+) -->\n```sh\n(.*?)\n```", re.DOTALL)

JsonObject = dict[str, object]


def recipes() -> dict[str, str]:
    text = DOC.read_text()
    found = dict(BLOCK.findall(text))
    assert len(found) == text.count("```sh"), "every sh block of docs/grpcurl.md needs a recipe marker"
    return found


def json_stream(output: str) -> list[JsonObject]:
    """The JSON objects grpcurl / buf curl print one after another."""
    decoder = json.JSONDecoder()
    objects: list[JsonObject] = []
    index = 0
    while (index := _skip_space(output, index)) < len(output):
        value, index = decoder.raw_decode(output, index)
        assert isinstance(value, dict)
        objects.append(value)
    return objects


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def field(obj: JsonObject, *path: str) -> object:
    value: object = obj
    for key in path:
        assert isinstance(value, dict), (path, obj)
        value = value.get(key)
    return value


def check_generation(output: str) -> None:
    events = json_stream(output)
    assert "started" in events[0] and "finished" in events[-1]
    text = "".join(str(field(e, "delta", "text") or "") for e in events[1:-1])
    assert "Paris" in text
    assert field(events[-1], "finished", "reason") in (
        "FINISH_REASON_END_OF_SEQUENCE",
        "FINISH_REASON_LENGTH",
    )


def _structured_text(output: str) -> tuple[str, object]:
    events = json_stream(output)
    assert "started" in events[0] and "finished" in events[-1]
    text = "".join(str(field(e, "delta", "text") or "") for e in events[1:-1])
    return text, field(events[-1], "finished", "reason")


def check_json_schema(output: str) -> None:
    text, reason = _structured_text(output)
    value = json.loads(text)
    assert isinstance(value, dict) and set(value) == {"name", "age"}, value
    assert isinstance(value["name"], str) and len(value["name"]) <= 12
    assert isinstance(value["age"], int) and 0 <= value["age"] <= 120
    assert reason in ("FINISH_REASON_END_OF_SEQUENCE", "FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE")


def check_choice(output: str) -> None:
    text, reason = _structured_text(output)
    assert text in ("positive", "negative", "neutral")
    assert reason == "FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE"


def check_list(output: str) -> None:
    assert {"tokenwire.v1.GenerationService", "tokenwire.v1.ModelService"} <= set(output.split())


def check_describe(output: str) -> None:
    assert "tokenwire.v1.GenerationService is a service" in output
    assert all(f"rpc {name}" in output for name in ("Generate", "Session", "Abort"))


def check_model_info(output: str) -> None:
    (info,) = json_stream(output)
    assert info["model"] and info["engine"] == "native" and info["hasChatTemplate"] is True


def check_tokenize(output: str) -> None:
    (result,) = json_stream(output)
    assert isinstance(result["tokenIds"], list) and result["tokenIds"]


def check_session(output: str) -> None:
    finished = {
        e["requestId"]: field(e, "finished", "reason") for e in json_stream(output) if "finished" in e
    }
    assert finished["b"] == "FINISH_REASON_CANCELLED"
    assert finished["a"] in ("FINISH_REASON_LENGTH", "FINISH_REASON_END_OF_SEQUENCE")


def check_abort(output: str) -> None:
    assert json_stream(output) == [{}]


def check_bad_request(output: str) -> None:
    (status,) = json_stream(output)
    assert status["code"] == 3  # INVALID_ARGUMENT
    details = status["details"]
    assert isinstance(details, list)
    (bad_request,) = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert [v["field"] for v in bad_request["field_violations"]] == ["sampling.top_p"]


def check_unauthenticated(output: str) -> None:
    (status,) = json_stream(output)
    assert status["code"] == 16  # UNAUTHENTICATED
    details = status["details"]
    assert isinstance(details, list)
    assert [d["@type"] for d in details] == ["type.googleapis.com/google.rpc.ErrorInfo"]


CHECKS: dict[str, Callable[[str], None]] = {
    "list": check_list,
    "describe": check_describe,
    "model-info": check_model_info,
    "tokenize": check_tokenize,
    "generate": check_generation,
    "session": check_session,
    "json-schema": check_json_schema,
    "choice": check_choice,
    "abort": check_abort,
    "bad-request": check_bad_request,
    "buf-model-info": check_model_info,
    "buf-generate": check_generation,
}
TLS_CHECKS: dict[str, Callable[[str], None]] = {
    "tls-list": check_list,
    "tls-generate": check_generation,
    "tls-unauthenticated": check_unauthenticated,
}


def run_recipe(command: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_every_recipe_has_a_check() -> None:
    assert recipes().keys() == CHECKS.keys() | TLS_CHECKS.keys()


@pytest.mark.parametrize("name", list(CHECKS))
def test_recipe(name: str, live_server: LiveServer) -> None:
    command = recipes()[name]
    assert DOC_ADDRESS in command
    CHECKS[name](run_recipe(command.replace(DOC_ADDRESS, live_server.address)))


@pytest.mark.parametrize("name", list(TLS_CHECKS))
def test_tls_recipe(name: str, secure_live_server: SecureLiveServer) -> None:
    command = recipes()[name]
    assert TLS_DOC_ADDRESS in command
    env = {**os.environ, **secure_env(secure_live_server, secure_live_server.token_all)}
    TLS_CHECKS[name](run_recipe(command.replace(TLS_DOC_ADDRESS, secure_live_server.address), env))
