"""The Java client's examples, built by clients/java/ci.sh.

The library is in target/classes; the examples (src/examples/java, kept out of the library jar)
are compiled with the tests into target/test-classes; target/classpath.txt lists the runtime
dependencies.
"""

from __future__ import annotations

import json

from tests.client_examples import (
    CLIENTS,
    check_retry_output,
    check_samples_output,
    check_secure_stream_example,
    check_session_output,
    check_stream_output,
    check_structured_output,
    java_example,
    run_example,
    run_while_busy,
)
from tests.conftest import LiveServer, SecureLiveServer

HERE = CLIENTS / "java"


def java(main_class: str) -> list[str]:
    return java_example(main_class)


def stream() -> list[str]:
    return [*java("dev.tokenwire.examples.StreamExample"), "What is the capital of France?"]


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example(java("dev.tokenwire.examples.StreamExample"), live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example(java("dev.tokenwire.examples.SessionExample"), live_server))


def test_stream_example_over_mtls_with_a_token(secure_live_server: SecureLiveServer) -> None:
    check_secure_stream_example(stream(), secure_live_server)


def test_structured_example(live_server: LiveServer) -> None:
    check_structured_output(run_example(java("dev.tokenwire.examples.StructuredExample"), live_server))


def test_samples_example(live_server: LiveServer) -> None:
    check_samples_output(run_example(java("dev.tokenwire.examples.SamplesExample"), live_server))


def test_retry_example(busy_sim_server: LiveServer) -> None:
    check_retry_output(run_while_busy(java("dev.tokenwire.examples.RetryExample"), busy_sim_server))


def test_tokenize_example(live_server: LiveServer) -> None:
    """tokenize(chat) gives the ids and the rendered prompt, detokenize gives the text back."""
    output = run_example(java("dev.tokenwire.examples.TokenizeExample"), live_server)
    fields = dict(line.split(" ", 1) for line in output.splitlines())
    assert set(fields) == {"chat_tokens", "rendered", "kept", "text_tokens", "text"}, output
    rendered = json.loads(fields["rendered"])
    assert int(fields["chat_tokens"]) > 0
    assert "You are a helpful assistant." in rendered
    assert rendered.endswith("What is the capital of France?<|im_end|>\n<|im_start|>assistant\n"), rendered
    assert json.loads(fields["kept"]) == rendered
    assert int(fields["text_tokens"]) > 5
    assert json.loads(fields["text"]) == "Tokenizers split text: naïve café, 東京."
