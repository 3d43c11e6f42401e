"""The ``tokenwire`` command line, run as a user would run it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.cli_process import ServeProcess, run
from tests.live_servers import LiveServer


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


def test_speculation_flags_and_environment_reach_the_native_engine_config() -> None:
    shown = run("config", "show", "--speculation", "off", env={"TOKENWIRE_DRAFT_LENGTH": "6"})
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)
    assert config["speculation"] == "off" and config["draft_length"] == 6
    assert json.loads(run("config", "show").stdout)["speculation"] == "eagle3"
    bad = run("config", "show", "--draft-length", "17")
    assert bad.returncode != 0 and "--draft-length" in bad.stderr


def test_each_engines_flags_reach_its_own_group_of_the_config() -> None:
    """ServeConfig groups each engine's settings (NativeOptions, SimOptions, TrtLlmOptions): the
    flags and variables of one engine land in its group and reach that engine's configuration."""
    native = json.loads(
        run(
            "config",
            "show",
            "--weights",
            "fp32",
            "--prefix-cache-mb",
            "0",
            env={"TOKENWIRE_SPECULATION": "ngram"},
        ).stdout
    )
    assert (native["speculation"], native["weights"], native["prefix_cache_mb"]) == ("ngram", "fp32", 0)
    sim = json.loads(run("config", "show", "--engine", "sim", "--sim-step-ms", "7", "--sim-seed", "9").stdout)
    assert (sim["mode"], sim["step_interval_s"], sim["seed"]) == ("latency", 0.007, 9)
    bad = run("config", "show", env={"TOKENWIRE_SPECULATION": "eagle"})
    assert bad.returncode != 0 and "TOKENWIRE_SPECULATION" in bad.stderr
    flag = run("config", "show", "--speculation", "eagle")
    assert flag.returncode != 0 and "--speculation" in flag.stderr


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


def test_serve_converts_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    server = ServeProcess(env={"TOKENWIRE_CACHE_DIR": str(tmp_path)})
    try:
        port = server.wait_for("server_listening")["port"]
        assert server.wait_for("weights_converting")["percent"] == 0
        assert server.wait_for("model_ready")["model"] == "SmolLM2-135M-Instruct"
        assert any(tmp_path.iterdir()), "no converted weights were cached"
        done = run("generate", "Say hello.", "--max-tokens", "5", "--target", f"127.0.0.1:{port}")
        assert done.returncode == 0 and done.stdout.strip(), done.stderr
        server.process.send_signal(signal.SIGTERM)
        server.wait_for("server_stopped")
        assert server.process.wait(timeout=60) == 0
    finally:
        server.process.kill()
