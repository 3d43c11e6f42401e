"""The ``tokenwire`` command: ``serve`` and ``generate``.

Every ``serve`` flag has an environment-variable equivalent (``--max-batch-size``
↔ ``TOKENWIRE_MAX_BATCH_SIZE``); a flag on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
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

from service import logs
from service.config import ServeConfig

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


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw else None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenwire", description="gRPC front door for fast LLM inference.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="serve the tokenwire.v1 API", description="Serve the tokenwire.v1 API."
    )
    defaults = ServeConfig()
    _add(serve, "--host", str, defaults.host, "address to listen on")
    _add(serve, "--port", int, defaults.port, "port to listen on (0: pick a free one)")
    _add(serve, "--engine", str, defaults.engine, "inference engine", choices=["native"])
    _add(serve, "--model-path", _optional_path, defaults.model_path, "GGUF model file for the native engine")
    _add(serve, "--cache-dir", _optional_path, defaults.cache_dir, "where converted weights are cached")
    _add(
        serve, "--max-batch-size", _positive_int, defaults.max_batch_size, "most generations decoded together"
    )
    _add(
        serve,
        "--max-waiting",
        _positive_int,
        defaults.max_waiting,
        "most generations queued for a batch slot",
    )
    _add(
        serve,
        "--threads",
        _positive_int,
        defaults.threads,
        "CPU threads for the native engine (default: all)",
    )
    _add(serve, "--default-max-tokens", _positive_int, defaults.default_max_tokens, "max_tokens when unset")
    _add(serve, "--grace-period", float, defaults.grace_period_s, "seconds streams get to finish on shutdown")
    _add(serve, "--log-format", str, defaults.log_format, "log format", choices=["auto", "json", "console"])
    _add(
        serve,
        "--log-level",
        str,
        defaults.log_level,
        "log level",
        choices=["debug", "info", "warning", "error"],
    )

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
    return parser


def _serve_config(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        host=args.host,
        port=args.port,
        engine=args.engine,
        model_path=args.model_path,
        cache_dir=args.cache_dir,
        max_batch_size=args.max_batch_size,
        max_waiting=args.max_waiting,
        threads=args.threads,
        default_max_tokens=args.default_max_tokens,
        grace_period_s=args.grace_period,
        log_format=args.log_format,
        log_level=args.log_level,
    )


async def _serve(config: ServeConfig) -> int:
    from service.engine_choice import build_engine
    from service.server import TokenwireServer

    server = TokenwireServer(config, build_engine(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    ready = asyncio.ensure_future(server.wait_ready())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
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


async def _generate(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    request = _generate_request(args)
    async with aio.insecure_channel(args.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            async for response in stub.Generate(request, timeout=args.timeout):
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
            import uvloop

            return uvloop.run(_serve(config))
        case "generate":
            return asyncio.run(_generate(args))
        case other:
            raise AssertionError(f"unknown command {other}")


if __name__ == "__main__":
    sys.exit(main())
