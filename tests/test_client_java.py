"""The Java client's examples, built by clients/java/ci.sh (target/classes, target/classpath.txt)."""

from __future__ import annotations

from tests.client_examples import CLIENTS, check_session_output, check_stream_output, run_example
from tests.conftest import LiveServer

HERE = CLIENTS / "java"


def java(main_class: str) -> list[str]:
    dependencies = (HERE / "target" / "classpath.txt").read_text().strip()
    return ["java", "-cp", f"{HERE / 'target' / 'classes'}:{dependencies}", main_class]


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example(java("dev.tokenwire.examples.StreamExample"), live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example(java("dev.tokenwire.examples.SessionExample"), live_server))
