"""The ``tokenwire`` command: ``serve`` and ``generate``.

Every ``serve`` flag has an environment-variable equivalent (``--max-batch-size``
↔ ``TOKENWIRE_MAX_BATCH_SIZE``); a flag on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc
import structlog
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

from engines.contract import MAX_DRAFT_LENGTH, Engine, SpeculationMethod
from service import logs
from service.config import (
    ENGINE_NAMES,
    OPEN_SERVICE_NAMES,
    PREFILL_NAMES,
    SIM_MODES,
    WEIGHTS_NAMES,
    ConfigError,
    NativeOptions,
    OpenServiceName,
    ServeConfig,
    SimOptions,
    TrtLlmOptions,
)
from service.engine_choice import EngineConfigError, build_engine, describe_engine

T = TypeVar("T")

log = structlog.get_logger(__name__)


def _env_name(flag: str) -> str:
    return "TOKENWIRE_" + flag.lstrip("-").replace("-", "_").upper()


def _env_default(flag: str, default: T, parse: Callable[[str], T]) -> T:
    raw = os.environ.get(_env_name(flag))
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as error:
        raise SystemExit(f"tokenwire: invalid {_env_name(flag)}={raw!r}: {error}") from error


def _add(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: Callable[[str], object],
    default: object,
    help_text: str,
    **extra: object,
) -> None:
    parser.add_argument(
        flag,
        type=kind,
        default=_env_default(flag, default, kind),
        help=f"{help_text} [env {_env_name(flag)}; default: {default}]",
        **extra,  # type: ignore[arg-type]  # argparse's keyword types are wider than object
    )


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _optional_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number in [0, 65535]")
    return value


def _otlp_endpoint(raw: str) -> str:
    scheme, _, rest = raw.partition("://")
    if scheme not in ("http", "https") or not rest or any(c.isspace() for c in raw) or len(raw) > 512:
        raise ValueError("must be http://host:port or https://host:port")
    return raw


def _seconds(raw: str) -> float:
    value = float(raw)
    if not (value >= 0 and value != float("inf")):
        raise ValueError("must be a finite number of seconds, 0 or more")
    return value


def _draft_length(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_DRAFT_LENGTH:
        raise ValueError(f"must be in [1, {MAX_DRAFT_LENGTH}]")
    return value


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


def _optional_str(raw: str) -> str | None:
    return raw or None


def _open_services(raw: str) -> tuple[OpenServiceName, ...]:
    """``--auth-open``: comma-separated services, or ``none``."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if names == ["none"]:
        return ()
    chosen: list[OpenServiceName] = []
    for name in names:
        match = next((known for known in OPEN_SERVICE_NAMES if known == name), None)
        if match is None:
            raise ValueError(f"expected none or a comma-separated list of {', '.join(OPEN_SERVICE_NAMES)}")
        chosen.append(match)
    if not chosen:
        raise ValueError("empty: use none for no open services")
    return tuple(chosen)


def _add_security_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ServeConfig()
    _add(parser, "--tls-cert", _optional_path, None, "PEM certificate chain: serve TLS only (with --tls-key)")
    _add(parser, "--tls-key", _optional_path, None, "PEM private key of --tls-cert")
    _add(
        parser,
        "--tls-client-ca",
        _optional_path,
        None,
        "PEM CA bundle: require client certificates that chain to it (mTLS; needs --tls-cert)",
    )
    _add(
        parser,
        "--auth-tokens-file",
        _optional_path,
        None,
        "bearer tokens, one '<token or sha256:hex> [rights]' a line; rights: generate, model, health, "
        "reflection or all (the default)",
    )
    _add(
        parser,
        "--auth-tokens-env",
        _optional_str,
        None,
        "NAME of an environment variable holding token entries (';' or newline separated)",
    )
    _add(
        parser,
        "--auth-open",
        _open_services,
        ",".join(defaults.auth_open),
        "services that need no token when token auth is on: health, reflection, or none",
    )


def _overrides(raw: str) -> tuple[str, ...]:
    """``TOKENWIRE_SET``: one ``key.path=value`` per line."""
    return tuple(line.strip() for line in raw.splitlines() if line.strip())


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    defaults = ServeConfig()
    native, sim = defaults.native, defaults.sim
    _add(parser, "--engine", str, defaults.engine, "inference engine", choices=list(ENGINE_NAMES))
    _add(
        parser,
        "--model-path",
        _optional_path,
        defaults.model_path,
        "native: GGUF file; trtllm: target model directory",
    )
    _add(
        parser,
        "--draft-model-path",
        _optional_path,
        None,
        "trtllm: speculative draft model directory; native: EAGLE-3 head file (default: the shipped head)",
    )
    _add(parser, "--preset", str, None, "trtllm: named configuration (see docs/deploy.md)")
    _add(parser, "--engine-config", _optional_path, None, "trtllm: TOML or YAML file of LLM arguments")
    _add(
        parser,
        "--trtllm-version",
        str,
        None,
        "trtllm: TensorRT-LLM release to validate against: 1.2.1, 1.3 or an exact version "
        "(default: the installed one; config show without it: 1.2.1)",
    )
    parser.add_argument(
        "--set",
        dest="engine_overrides",
        action="append",
        metavar="KEY=VALUE",
        default=list(_env_default("--set", tuple[str, ...](), _overrides)),
        help="trtllm: override one LLM argument, e.g. kv_cache_config.free_gpu_memory_fraction=0.8 "
        "(repeatable) [env TOKENWIRE_SET, one per line]",
    )
    _add(
        parser,
        "--cache-dir",
        _optional_path,
        defaults.cache_dir,
        "native: where converted weights are cached",
    )
    _add(
        parser,
        "--max-batch-size",
        _positive_int,
        defaults.max_batch_size,
        "most generations decoded together (default: the engine's; native 8)",
    )
    _add(
        parser,
        "--max-waiting",
        _positive_int,
        defaults.max_waiting,
        "most generations queued for a batch slot (default: the engine's; native 64)",
    )
    _add(
        parser,
        "--sim-mode",
        str,
        sim.mode,
        "sim: the record's shape: latency (8 users x 1,000 tok/s) or throughput (hundreds of users)",
        choices=list(SIM_MODES),
    )
    _add(parser, "--sim-step-ms", float, sim.step_ms, "sim: step interval in latency mode (default 3)")
    _add(parser, "--sim-seed", int, sim.seed, "sim: seed of the acceptance draws")
    _add(
        parser,
        "--coalesce-tokens",
        _positive_int,
        defaults.coalesce_tokens,
        "send a stream's pending tokens as one event once this many are pending (native, sim)",
    )
    _add(
        parser,
        "--coalesce-ms",
        float,
        defaults.coalesce_ms,
        "... or once the oldest pending token waited this long (0: never hold back)",
    )
    _add(parser, "--threads", _positive_int, native.threads, "native: CPU threads (default: all)")
    _add(
        parser,
        "--kv-cache-mb",
        _positive_int,
        native.kv_cache_mb,
        "native: MiB the KV cache may hold at once; it grows by the page as requests need it and "
        "requests wait when it is full (also caps the context length)",
    )
    _add(
        parser,
        "--prefix-cache-mb",
        _non_negative_int,
        native.prefix_cache_mb,
        "native: MiB for the keys and values of prompt prefixes seen before, reused by later requests "
        "that start the same way (least recently used blocks make room; 0: off)",
    )
    _add(
        parser,
        "--speculate-max-decoding",
        _positive_int,
        native.speculate_max_decoding,
        "native: requests speculate while at most this many decode together, their drafts verified in "
        "one shared pass; beyond it all take the plain batched step",
    )
    _add(
        parser,
        "--prefill",
        str,
        native.prefill,
        "native: the oldest waiting prompt goes first, one pass per prompt (fcfs), or prompts waiting "
        "together share one forward pass per iteration (batched; see docs/benchmarks.md)",
        choices=list(PREFILL_NAMES),
    )
    _add(
        parser,
        "--weights",
        str,
        native.weights,
        "native: q computes straight from the GGUF's quantized blocks (needs the compiled kernels); "
        "q8act does too, with activations quantized to int8 in decode steps and verification passes "
        "(faster, as llama.cpp computes; not exact against fp32); "
        "fp32 dequantizes every weight at load (the reference path)",
        choices=list(WEIGHTS_NAMES),
    )
    _add(
        parser,
        "--speculation",
        SpeculationMethod,
        native.speculation.value,
        "native: speculative decoding for requests that do not choose (eagle3: the draft head, "
        "ngram: prompt lookup)",
        choices=list(SpeculationMethod),
        metavar="{" + ",".join(method.value for method in SpeculationMethod) + "}",
    )
    _add(
        parser,
        "--draft-length",
        _draft_length,
        native.draft_length,
        f"native: most draft tokens per step (1 to {MAX_DRAFT_LENGTH})",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenwire", description="gRPC front door for fast LLM inference.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="serve the tokenwire.v1 API", description="Serve the tokenwire.v1 API."
    )
    defaults = ServeConfig()
    _add(serve, "--host", str, defaults.host, "address to listen on")
    _add(serve, "--port", int, defaults.port, "port to listen on (0: pick a free one)")
    _add_engine_flags(serve)
    _add_security_flags(serve)
    _add(serve, "--default-max-tokens", _positive_int, defaults.default_max_tokens, "max_tokens when unset")
    _add(
        serve,
        "--max-samples",
        _positive_int,
        defaults.max_samples,
        "largest n (samples per request) accepted",
    )
    _add(
        serve,
        "--otlp-endpoint",
        _otlp_endpoint,
        defaults.otlp_endpoint,
        "export OpenTelemetry traces to this OTLP/gRPC collector (http://host:4317, or https:// for TLS); "
        "a caller's traceparent becomes the parent of each RPC's span (default: no tracing)",
    )
    _add(
        serve,
        "--metrics-port",
        _optional_port,
        defaults.metrics_port,
        "serve Prometheus metrics on this port at /metrics, on the same host (default: off; 0: a free port)",
    )
    _add(
        serve,
        "--grace-period",
        _seconds,
        defaults.grace_period_s,
        "seconds generations in flight get to finish on SIGTERM/SIGINT (new work is refused "
        "UNAVAILABLE meanwhile; those still running then end CANCELLED)",
    )
    _add(
        serve,
        "--stall-timeout",
        _seconds,
        defaults.stall_timeout_s,
        "seconds a stream's reader may take nothing while output is pending before its "
        "generations are cancelled and it gets RESOURCE_EXHAUSTED (0: never)",
    )
    _add(
        serve,
        "--gc-threshold",
        int,
        defaults.gc_young_threshold,
        "allocations between young garbage collections (0: Python's default, 700)",
    )
    _add(
        serve,
        "--switch-interval",
        float,
        defaults.switch_interval_ms,
        "Python thread switch interval in ms (default: Python's 5)",
    )
    _add(serve, "--log-format", str, defaults.log_format, "log format", choices=["auto", "json", "console"])
    _add(
        serve,
        "--log-level",
        str,
        defaults.log_level,
        "log level",
        choices=["debug", "info", "warning", "error"],
    )

    config = commands.add_parser(
        "config",
        help="inspect configuration",
        description="Inspect the configuration an engine would start with, without starting it.",
    )
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    show = config_commands.add_parser(
        "show",
        help="print the effective engine configuration",
        description="Validate and print the effective engine configuration "
        "(for trtllm: the exact tensorrt_llm.LLM arguments and environment).",
    )
    _add_engine_flags(show)

    generate = commands.add_parser(
        "generate",
        help="stream a completion from a running server to stdout",
        description="Stream a completion from a running tokenwire server to stdout.",
    )
    generate.add_argument("prompt", help="the prompt (sent as a chat user message unless --raw)")
    _add(generate, "--target", str, "127.0.0.1:50051", "server address")
    generate.add_argument(
        "--raw", action="store_true", help="send the prompt as plain text, not as a chat message"
    )
    generate.add_argument("--system", help="system message for chat input")
    generate.add_argument("--max-tokens", type=_positive_int, help="most tokens to generate")
    generate.add_argument("--temperature", type=float, help="sampling temperature (0: greedy)")
    generate.add_argument("--top-p", type=float, help="nucleus sampling threshold")
    generate.add_argument("--seed", type=int, help="seed for reproducible sampling")
    generate.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    generate.add_argument("--timeout", type=float, help="gRPC deadline in seconds")
    generate.add_argument("--stats", action="store_true", help="print the final event's statistics to stderr")
    _add(generate, "--tls-ca", _optional_path, None, "PEM CA bundle to verify the server with; turns TLS on")
    _add(generate, "--client-cert", _optional_path, None, "PEM client certificate for mTLS (turns TLS on)")
    _add(generate, "--client-key", _optional_path, None, "PEM private key of --client-cert")
    generate.add_argument(
        "--token",
        default=os.environ.get("TOKENWIRE_TOKEN") or None,
        help="bearer token, sent as 'authorization: Bearer <token>' [env TOKENWIRE_TOKEN]",
    )

    bench = commands.add_parser(
        "bench",
        help="drive a running server with streaming load; report, JSON and plots",
        description="Drive a running server over Generate (or Session) at several concurrency levels from "
        "several client processes; print a table, write JSON and PNG charts (see docs/benchmarks.md).",
    )
    from tokenwire.loadgen.cli import add_run_arguments

    add_run_arguments(bench)

    train = commands.add_parser(
        "train-draft",
        help="train the native engine's EAGLE-3 draft head on this machine",
        description="Generate training data with the embedded model from the committed prompt set, "
        "extract its hidden states, and train the EAGLE-3 head (resumable; see docs/eagle3.md).",
    )
    train.add_argument(
        "--work-dir", type=Path, default=None, help="data and features (default: cache dir/eagle3)"
    )
    train.add_argument(
        "--output", type=Path, default=None, help="head file (default: the shipped head's path)"
    )
    train.add_argument("--epochs", type=_positive_int, default=None, help="passes over the data")
    train.add_argument("--draft-vocab", type=_positive_int, default=None, help="draft vocabulary size")
    train.add_argument("--unroll", type=_positive_int, default=None, help="training-time-test steps")
    train.add_argument("--max-tokens", type=_positive_int, default=None, help="longest generated answer")
    train.add_argument("--seed", type=int, default=None, help="seed for initialisation and batching")
    train.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (default: all)")
    train.add_argument(
        "--samples-per-prompt",
        type=_positive_int,
        default=None,
        help="answers per prompt: the greedy one, then sampled ones (default 1)",
    )
    train.add_argument(
        "--follow-up-samples",
        type=_non_negative_int,
        default=None,
        help="answers per two-turn conversation built on each greedy answer (default 0: none)",
    )
    train.add_argument(
        "--concurrency", type=_positive_int, default=None, help="requests answered at once while generating"
    )
    train.add_argument("--batch-tokens", type=_positive_int, default=None, help="tokens per training batch")
    train.add_argument(
        "--stage",
        choices=("generate", "features", "train"),
        default=None,
        help="the last stage to run (default: train)",
    )
    return parser


def _train_draft(args: argparse.Namespace) -> int:
    # The native engine's trainer: imported by this command only, never on the serving path
    # (.ci/check_layers.py holds both to that).
    from engines.native.eagle3.train import train_with

    record = train_with(
        args.work_dir,
        output=args.output,
        epochs=args.epochs,
        draft_vocab=args.draft_vocab,
        unroll=args.unroll,
        max_tokens=args.max_tokens,
        seed=args.seed,
        threads=args.threads,
        samples_per_prompt=args.samples_per_prompt,
        follow_up_samples=args.follow_up_samples,
        concurrency=args.concurrency,
        batch_tokens=args.batch_tokens,
        stage=args.stage,
    )
    print(json.dumps(record, indent=2))
    return 0


def _serve_config(args: argparse.Namespace) -> ServeConfig:
    """The config from ``serve`` (all flags) or ``config show`` (engine flags only)."""
    defaults = ServeConfig()
    return ServeConfig(
        host=getattr(args, "host", defaults.host),
        port=getattr(args, "port", defaults.port),
        engine=args.engine,
        model_path=args.model_path,
        draft_model_path=args.draft_model_path,
        cache_dir=args.cache_dir,
        max_batch_size=args.max_batch_size,
        max_waiting=args.max_waiting,
        switch_interval_ms=getattr(args, "switch_interval", defaults.switch_interval_ms),
        gc_young_threshold=getattr(args, "gc_threshold", defaults.gc_young_threshold),
        coalesce_tokens=args.coalesce_tokens,
        coalesce_ms=args.coalesce_ms,
        native=NativeOptions(
            threads=args.threads,
            kv_cache_mb=args.kv_cache_mb,
            prefix_cache_mb=args.prefix_cache_mb,
            speculate_max_decoding=args.speculate_max_decoding,
            prefill=args.prefill,
            weights=args.weights,
            speculation=args.speculation,
            draft_length=args.draft_length,
        ),
        trtllm=TrtLlmOptions(
            preset=args.preset,
            engine_config=args.engine_config,
            overrides=tuple(args.engine_overrides),
            version=args.trtllm_version,
        ),
        sim=SimOptions(mode=args.sim_mode, step_ms=args.sim_step_ms, seed=args.sim_seed),
        default_max_tokens=getattr(args, "default_max_tokens", defaults.default_max_tokens),
        max_samples=getattr(args, "max_samples", defaults.max_samples),
        grace_period_s=getattr(args, "grace_period", defaults.grace_period_s),
        metrics_port=getattr(args, "metrics_port", defaults.metrics_port),
        otlp_endpoint=getattr(args, "otlp_endpoint", defaults.otlp_endpoint),
        stall_timeout_s=getattr(args, "stall_timeout", defaults.stall_timeout_s),
        log_format=getattr(args, "log_format", defaults.log_format),
        log_level=getattr(args, "log_level", defaults.log_level),
        tls_cert=getattr(args, "tls_cert", defaults.tls_cert),
        tls_key=getattr(args, "tls_key", defaults.tls_key),
        tls_client_ca=getattr(args, "tls_client_ca", defaults.tls_client_ca),
        auth_tokens_file=getattr(args, "auth_tokens_file", defaults.auth_tokens_file),
        auth_tokens_env=getattr(args, "auth_tokens_env", defaults.auth_tokens_env),
        auth_open=getattr(args, "auth_open", defaults.auth_open),
    )


async def _serve(config: ServeConfig, engine: Engine) -> int:
    from service.server import TokenwireServer

    if config.switch_interval_ms is not None:
        sys.setswitchinterval(config.switch_interval_ms / 1000.0)
    if config.gc_young_threshold:
        # Measured (docs/benchmarks.md): Python's default young-generation threshold (700
        # allocations) ran full collections over the whole heap (torch, the tokenizer, protobuf
        # descriptors) often enough to add ~2 ms at p99 to token delivery.
        gc.set_threshold(config.gc_young_threshold, 20, 100)
    try:
        server = TokenwireServer(config, engine)
    except ConfigError as error:
        print(f"tokenwire: {error}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    ready = asyncio.ensure_future(server.wait_ready())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if ready.done() and ready.exception() is None:
        # Everything alive now (the engine, its model, descriptors) lives as long as the
        # server: keep it out of every later collection's scan.
        gc.freeze()
    if ready.done() and ready.exception() is not None:
        log.error("model_load_failed", error=repr(ready.exception()))
        await server.stop(0)
        return 1
    await stopping
    await server.stop()
    return 0


def _generate_request(args: argparse.Namespace) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest()
    if args.raw:
        request.text = args.prompt
    else:
        if args.system:
            request.chat.messages.add(role="system", content=args.system)
        request.chat.messages.add(role="user", content=args.prompt)
    if args.max_tokens is not None:
        request.stopping.max_tokens = args.max_tokens
    if args.temperature is not None:
        request.sampling.temperature = args.temperature
    if args.top_p is not None:
        request.sampling.top_p = args.top_p
    if args.seed is not None:
        request.sampling.seed = args.seed
    request.stopping.stop.extend(args.stop)
    return request


def _channel(args: argparse.Namespace) -> aio.Channel:
    """Plaintext unless a CA or a client certificate is given (then TLS; system roots without a CA)."""
    if (args.client_cert is None) != (args.client_key is None):
        raise ConfigError("--client-cert and --client-key go together")
    if args.tls_ca is None and args.client_cert is None:
        return aio.insecure_channel(args.target)
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=args.tls_ca.read_bytes() if args.tls_ca is not None else None,
            private_key=args.client_key.read_bytes() if args.client_key is not None else None,
            certificate_chain=args.client_cert.read_bytes() if args.client_cert is not None else None,
        )
    except OSError as error:
        raise ConfigError(f"cannot read {error.filename}: {error.strerror}") from None
    return aio.secure_channel(args.target, credentials)


async def _generate(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    request = _generate_request(args)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    try:
        channel = _channel(args)
    except ConfigError as error:
        print(f"tokenwire: {error}", file=sys.stderr)
        return 2
    async with channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            async for response in stub.Generate(request, timeout=args.timeout, metadata=metadata):
                match response.WhichOneof("event"):
                    case "delta":
                        sys.stdout.write(response.delta.text)
                        sys.stdout.flush()
                    case "finished":
                        sys.stdout.write("\n")
                        if args.stats:
                            print(json_format.MessageToJson(response.finished, indent=None), file=sys.stderr)
                    case _:
                        pass
        except aio.AioRpcError as error:
            code: grpc.StatusCode = error.code()
            print(f"tokenwire: {code.name}: {error.details()}", file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    match args.command:
        case "serve":
            config = _serve_config(args)
            logs.configure(config.log_format, config.log_level)
            try:
                engine = build_engine(config)
            except EngineConfigError as error:
                print(f"tokenwire: {error}", file=sys.stderr)
                return 2
            import uvloop

            return uvloop.run(_serve(config, engine))
        case "config":
            try:
                print(describe_engine(_serve_config(args)))
            except EngineConfigError as error:
                print(f"tokenwire: {error}", file=sys.stderr)
                return 2
            return 0
        case "generate":
            return asyncio.run(_generate(args))
        case "bench":
            from tokenwire.loadgen.cli import run_from_args

            return run_from_args(args)
        case "train-draft":
            logs.configure("auto", "info")
            return _train_draft(args)
        case other:
            raise AssertionError(f"unknown command {other}")


if __name__ == "__main__":
    sys.exit(main())
