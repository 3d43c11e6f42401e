"""The load generator: its statistics on synthetic records, and a short run against the floor server."""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import threading
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tokenwire.loadgen import cli
from tokenwire.loadgen.driver import DriverConfig, SimParams, run, split
from tokenwire.loadgen.plots import write_plots
from tokenwire.loadgen.report import format_comparison, format_table, load_levels, write_json
from tokenwire.loadgen.sim_replay import replay_step_sizes
from tokenwire.loadgen.stats import (
    LevelResult,
    LevelSpec,
    RequestRecord,
    SimSchedule,
    added_latency_ms,
    compare,
    expand_weighted,
    itl_per_token_ms,
    max_aggregate_within,
    percentile,
    process_cpu_seconds,
    summarize,
    token_events,
)

from engines.sim.schedule import step_sizes

MS = 1_000_000
REPO = Path(__file__).resolve().parent.parent


def record(
    request_id: str,
    sent_ms: float,
    events: Sequence[tuple[float, int]],
    *,
    finished_ms: float = 0.0,
    completion_tokens: int = -1,
    error: str = "",
) -> RequestRecord:
    """A record with times given in ms."""
    return RequestRecord(
        request_id=request_id,
        sent_ns=int(sent_ms * MS),
        started_ns=int(sent_ms * MS) + 1,
        event_ns=array("q", (int(t * MS) for t, _ in events)),
        event_tokens=array("i", (n for _, n in events)),
        finished_ns=int(finished_ms * MS),
        completion_tokens=completion_tokens,
        error=error,
    )


def fixed_sizes(sizes: Sequence[int]) -> Iterator[int]:
    """A schedule that yields ``sizes`` and then 1 forever."""
    return itertools.chain(sizes, itertools.repeat(1))


def level(concurrency: int, **fields: float | None) -> LevelResult:
    """A LevelResult with plain values, overridden by ``fields``."""
    values: dict[str, float | int | str | None] = {
        "concurrency": concurrency,
        "processes": 1,
        "rpc": "generate",
        "duration_s": 10.0,
        "requests_started": 1,
        "requests_completed": 1,
        "requests_failed": 0,
        "tokens": 1000,
        "events": 400,
        "tokens_per_event": 2.5,
        "aggregate_tokens_per_s": 100.0,
        "user_tokens_per_s_mean": 100.0,
        "user_tokens_per_s_p50": 100.0,
        "ttft_ms_p50": 1.0,
        "ttft_ms_p99": 1.0,
        "itl_ms_p50": 1.0,
        "itl_ms_p90": 1.0,
        "itl_ms_p99": 1.0,
    }
    values.update(fields)
    return LevelResult(**values)  # type: ignore[arg-type]  # the test's overrides are per-field values


# Percentile helpers


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


# Inter-token latency


def test_multi_token_event_counts_each_token_with_its_share_of_the_gap() -> None:
    arrivals, counts = token_events(record("r", 0, [(10, 2), (13, 3), (15, 1), (15.5, 0), (19, 4)]))
    per_token, weights = itl_per_token_ms(arrivals, counts)
    # The empty event is dropped; gaps 3, 2, 4 ms over 3, 1, 4 tokens.
    assert per_token.tolist() == pytest.approx([1.0, 2.0, 1.0])
    assert weights.tolist() == [3.0, 1.0, 4.0]
    assert expand_weighted(per_token, weights).tolist() == pytest.approx([1.0] * 3 + [2.0] + [1.0] * 4)


def test_summary_itl_is_per_token() -> None:
    # One event of 9 tokens after 9 ms (1 ms each) and one of 1 token after 5 ms.
    records = [record("r", 0, [(10, 1), (19, 9), (24, 1)])]
    result = summarize(records, LevelSpec(1, 1, "generate", 0, 100 * MS, 512))
    assert result.itl_ms_p50 == pytest.approx(1.0)
    assert result.itl_ms_p99 == pytest.approx(4.64)  # 91 % of the way from the 9th to the 10th token
    assert result.tokens == 11
    assert result.events == 3
    assert result.tokens_per_event == pytest.approx(11 / 3)


# Added latency


def test_added_latency_replays_the_schedule() -> None:
    # Steps of 2, 1, 3, 1, 2 tokens every 3 ms from t=100 ms. Step 1 arrives 0.5 ms late, steps 2 and 3
    # are coalesced into one event 0.25 ms after step 3 was due, step 4 is on time.
    events = [(100.0, 2), (103.5, 1), (109.25, 4), (112.0, 2)]
    arrivals, counts = token_events(record("r", 90, events))
    added, mismatches = added_latency_ms(arrivals, counts, fixed_sizes([2, 1, 3, 1, 2]), 3.0, max_tokens=512)
    assert math.isnan(added[0])
    assert added[1:].tolist() == pytest.approx([0.5, 0.25, 0.0])
    assert mismatches == 0


def test_added_latency_counts_events_that_end_mid_step() -> None:
    # The client thinks steps are 2, 2, 2 but the server sent 3 then 3: a different schedule.
    arrivals, counts = token_events(record("r", 0, [(10.0, 3), (13.0, 3)]))
    _, mismatches = added_latency_ms(arrivals, counts, fixed_sizes([2, 2, 2]), 3.0, max_tokens=512)
    assert mismatches == 1


def test_added_latency_accepts_a_last_step_cut_by_max_tokens() -> None:
    arrivals, counts = token_events(record("r", 0, [(10.0, 3), (13.0, 2)]))
    added, mismatches = added_latency_ms(arrivals, counts, fixed_sizes([3, 4]), 3.0, max_tokens=5)
    assert mismatches == 0
    assert added[1] == pytest.approx(0.0)


def test_added_latency_when_the_first_event_was_already_coalesced() -> None:
    # Steps 0 and 1 arrive together (the reference), step 2 a whole interval later plus 1 ms.
    arrivals, counts = token_events(record("r", 0, [(20.0, 3), (24.0, 1)]))
    added, _ = added_latency_ms(arrivals, counts, fixed_sizes([1, 2, 1]), 3.0, max_tokens=512)
    assert added[1] == pytest.approx(1.0)


def test_summary_reports_added_latency_with_a_simulated_schedule() -> None:
    sizes = {"a": [1, 1, 1, 1], "b": [2, 2]}
    sim = SimSchedule(step_ms=3.0, step_sizes=lambda request_id: fixed_sizes(sizes[request_id]))
    records = [
        record("a", 0, [(10, 1), (13, 1), (16.2, 1), (19.9, 1)]),
        record("b", 0, [(11, 2), (14.4, 2)]),
    ]
    result = summarize(records, LevelSpec(2, 1, "generate", 0, 100 * MS, 512), sim=sim)
    assert result.schedule_mismatches == 0
    assert result.added_latency_ms_max == pytest.approx(0.9)
    assert result.added_latency_ms_p50 == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("acceptance", "max_draft", "seed"),
    [(0.81, 3, 7), (0.5, 1, 0), (0.0, 4, 3), (1.0, 2, 11), (0.93, 7, 123), (0.3, 0, 5)],
)
def test_sim_params_replay_the_simulation_engines_draws(acceptance: float, max_draft: int, seed: int) -> None:
    """The load generator replays the schedule from its rule, without the server's code: the
    two must agree draw for draw, or every added-latency figure of a sim run is wrong."""
    schedule = SimParams(step_ms=3.0, acceptance=acceptance, max_draft=max_draft, seed=seed).schedule()
    for request_id in [f"lg-{process}-{n}" for process in range(3) for n in range(40)] + ["", "é-ü"]:
        expected = step_sizes(request_id, acceptance=acceptance, max_draft=max_draft, seed=seed)
        replayed = schedule.step_sizes(request_id)
        assert list(itertools.islice(replayed, 200)) == list(itertools.islice(expected, 200)), request_id


@pytest.mark.parametrize(("acceptance", "max_draft"), [(1.5, 3), (-0.1, 3), (0.5, -1)])
def test_sim_replay_refuses_what_the_engine_refuses(acceptance: float, max_draft: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        next(replay_step_sizes("a", acceptance=acceptance, max_draft=max_draft, seed=0))
    with pytest.raises(ValueError, match="must be"):
        next(step_sizes("a", acceptance=acceptance, max_draft=max_draft, seed=0))


# The rest of a level's summary


def test_summary_counts_only_the_measurement_window() -> None:
    records = [
        # Sent in the warm-up: its events count by arrival, its TTFT does not.
        record("early", 0, [(5, 1), (15, 1), (25, 1)], finished_ms=26, completion_tokens=3),
        # Sent in the window: TTFT 4 ms, 2 tokens after the first in 10 ms = 200 tokens/s.
        record("inside", 12, [(16, 1), (21, 1), (26, 1)], finished_ms=27, completion_tokens=3),
        record("failed", 30, [], error="UNAVAILABLE"),
        # After the window.
        record("late", 60, [(61, 5)]),
    ]
    result = summarize(records, LevelSpec(2, 1, "generate", 10 * MS, 50 * MS, 512), server_cpu_s=0.02)
    assert result.tokens == 5
    assert result.events == 5
    assert result.aggregate_tokens_per_s == pytest.approx(5 / 0.040)
    assert result.requests_started == 2
    assert result.requests_completed == 2
    assert result.requests_failed == 1
    assert result.ttft_ms_p50 == pytest.approx(4.0)
    assert result.user_tokens_per_s_p50 == pytest.approx(
        150.0
    )  # "early": 100/s in the window, "inside": 200/s
    assert result.user_tokens_per_s_mean == pytest.approx(150.0)
    assert result.added_latency_ms_p99 is None
    assert result.server_cpu_cores == pytest.approx(0.5)
    assert result.server_cpu_us_per_token == pytest.approx(4000.0)
    assert result.server_cpu_us_per_event == pytest.approx(4000.0)


def test_process_cpu_seconds_reads_proc_stat() -> None:
    before = process_cpu_seconds(os.getpid())
    sum(i * i for i in range(200_000))
    assert process_cpu_seconds(os.getpid()) >= before >= 0


def test_split_spreads_streams_over_processes() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 4) == [1, 1, 0, 0]


# compare()


def test_compare_reports_cpu_per_token_and_the_rate_within_the_latency_limit() -> None:
    tokenwire = [
        level(1, server_cpu_us_per_token=30.0, aggregate_tokens_per_s=1_000, added_latency_ms_p99=0.4),
        level(8, server_cpu_us_per_token=20.0, aggregate_tokens_per_s=8_000, added_latency_ms_p99=0.9),
        level(64, server_cpu_us_per_token=15.0, aggregate_tokens_per_s=50_000, added_latency_ms_p99=3.0),
    ]
    floor = [
        level(1, server_cpu_us_per_token=10.0, aggregate_tokens_per_s=1_000, added_latency_ms_p99=0.2),
        level(8, server_cpu_us_per_token=8.0, aggregate_tokens_per_s=8_000, added_latency_ms_p99=0.3),
        level(64, server_cpu_us_per_token=5.0, aggregate_tokens_per_s=64_000, added_latency_ms_p99=0.8),
        level(256, server_cpu_us_per_token=4.0, aggregate_tokens_per_s=90_000, added_latency_ms_p99=5.0),
    ]
    comparison = compare(tokenwire, floor)
    assert [row["concurrency"] for row in comparison["levels"]] == [1, 8, 64]
    assert [row["cpu_per_token_ratio"] for row in comparison["levels"]] == pytest.approx([3.0, 2.5, 3.0])
    assert comparison["tokenwire_max_aggregate_tokens_per_s"] == 8_000
    assert comparison["floor_max_aggregate_tokens_per_s"] == 64_000
    assert comparison["max_aggregate_ratio"] == pytest.approx(0.125)
    assert "3.00x" in format_comparison(comparison)


def test_compare_without_measurements_gives_none() -> None:
    comparison = compare([level(1)], [level(1)])
    assert comparison["levels"][0]["cpu_per_token_ratio"] is None
    assert comparison["max_aggregate_ratio"] is None
    assert max_aggregate_within([level(1, added_latency_ms_p99=1.0)], 1.0) is None


# Reports


def test_json_round_trip_and_table(tmp_path: Path) -> None:
    levels = [level(1, added_latency_ms_p99=0.5), level(8, server_cpu_cores=0.25)]
    path = tmp_path / "run.json"
    write_json(path, DriverConfig(address="127.0.0.1:1", concurrency=(1, 8)), levels)
    assert load_levels(path) == levels
    table = format_table(levels).splitlines()
    assert table[0].split()[:3] == ["conc", "reqs", "tokens"]
    assert len(table) == 3


def test_cli_flags_make_the_driver_config() -> None:
    parser = argparse.ArgumentParser()
    cli.add_run_arguments(parser)
    args = parser.parse_args(
        ["--address", "h:1", "--concurrency", "1,8,64", "--session", "--sim-step-ms", "3", "--sim-seed", "4"]
    )
    config = cli.config_from_args(args)
    assert config.concurrency == (1, 8, 64)
    assert config.rpc == "session"
    assert config.sim == SimParams(step_ms=3.0, acceptance=0.81, max_draft=3, seed=4)
    assert config.max_tokens == 512
    assert config.ignore_eos


# End to end against bench/floor_server.py


@pytest.fixture
def floor_server() -> Iterator[tuple[str, int]]:
    """bench/floor_server.py in latency mode on a free port: (address, pid)."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "floor_server.py"), "--port", "0", "--mode", "latency"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    ready: list[str] = []
    reader = threading.Thread(
        target=lambda: ready.append(process.stdout.readline() if process.stdout else "")
    )
    reader.start()
    reader.join(timeout=60)
    try:
        assert ready and ready[0].startswith("READY "), f"floor server did not start: {ready}"
        yield f"127.0.0.1:{int(ready[0].split()[1])}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("rpc", ["generate", "session"])
def test_driver_against_the_floor_server(floor_server: tuple[str, int], tmp_path: Path, rpc: str) -> None:
    address, pid = floor_server
    config = DriverConfig(
        address=address,
        concurrency=(2,),
        duration_s=1.5,
        warmup_s=0.5,
        processes=1,
        rpc="session" if rpc == "session" else "generate",
        max_tokens=48,
        server_pid=pid,
        sim=SimParams(step_ms=3.0),
    )
    seen: list[list[RequestRecord]] = []
    levels = run(config, on_records=lambda _, records: seen.append(records))

    [records] = seen
    finished = [r for r in records if r.finished_ns]
    assert finished
    assert not [r for r in records if r.error]
    for item in finished:
        assert sum(item.event_tokens) == item.completion_tokens == 48, item.request_id
    assert len({r.request_id for r in records}) == len(records)

    [result] = levels
    assert result.concurrency == 2
    assert result.requests_completed > 0
    assert result.tokens > 0
    assert result.schedule_mismatches == 0  # the client replays exactly the server's schedule
    assert result.added_latency_ms_p99 is not None
    assert result.server_cpu_s is not None

    out = tmp_path / "out"
    write_json(out / "loadgen.json", config, levels)
    charts = write_plots(levels, out, title="floor")
    assert load_levels(out / "loadgen.json") == levels
    for chart in charts:
        assert chart.read_bytes().startswith(b"\x89PNG")
    assert cli.main(["compare", str(out / "loadgen.json"), str(out / "loadgen.json")]) == 0
