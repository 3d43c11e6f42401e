"""The Go client's examples, built by clients/go/ci.sh into clients/go/.bin, against a live server."""

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
    run_example,
    run_while_busy,
)
from tests.conftest import SecureLiveServer
from tests.live_servers import LiveServer

BIN = CLIENTS / "go" / ".bin"


def test_stream_example(live_server: LiveServer) -> None:
    check_stream_output(run_example([str(BIN / "stream")], live_server))


def test_session_example(live_server: LiveServer) -> None:
    check_session_output(run_example([str(BIN / "session")], live_server))


def test_structured_example(live_server: LiveServer) -> None:
    """A JSON Schema (WithJSONSchema): the output is JSON that follows it."""
    check_structured_output(run_example([str(BIN / "structured")], live_server))


def test_samples_example(live_server: LiveServer) -> None:
    """n = 3 on one Generate stream (WithN, CompleteSamples): one line per sample, the prompt
    counted once."""
    check_samples_output(run_example([str(BIN / "samples")], live_server))


def test_retry_example(busy_sim_server: LiveServer) -> None:
    """While another generation holds the busy server's only slot, the first Generate is refused
    with RESOURCE_EXHAUSTED and RetryInfo and a retry succeeds (Stream.Attempts counts the calls);
    top_p = 5 gets INVALID_ARGUMENT with its field violation (FieldViolations)."""
    check_retry_output(run_while_busy([str(BIN / "retry")], busy_sim_server))


def test_stream_example_over_mtls_with_token(secure_live_server: SecureLiveServer) -> None:
    """CA + client certificate + the all-rights token: Paris; no token: UNAUTHENTICATED;
    the model-only token: PERMISSION_DENIED."""
    check_secure_stream_example([str(BIN / "stream")], secure_live_server)


def test_orca_example_reads_both_load_reports_through_grpc_gos_orca_package(live_server: LiveServer) -> None:
    """grpc-go's orca package, from a balancer of the example's own: the per-call report of a
    GetLoad and a Generate (from the endpoint-load-metrics-bin trailer) and out-of-band reports."""
    lines = [json.loads(line) for line in run_example([str(BIN / "orca")], live_server).splitlines()]
    sources = [line["source"] for line in lines]
    assert sources.count("per_call") == 2 and sources.count("out_of_band") >= 2
    for line in lines:
        assert set(line["named_metrics"]) == {"queue_depth", "active_slots", "in_flight"}
        assert set(line["utilization"]) == {"kv_cache", "slots"}
        assert 0 <= line["cpu_utilization"] <= 1
    # The Generate's report is the second per-call one: by then a generation had been admitted.
    assert [line for line in lines if line["source"] == "per_call"][1]["rps_fractional"] > 0
