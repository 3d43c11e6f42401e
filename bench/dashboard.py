"""deploy/grafana/tokenwire.json's panels, drawn from a real scrape: ``make dashboard``.

Starts ``tokenwire serve`` (the embedded model, metrics on) and a real
Prometheus server (Debian's prometheus package, unpacked into .deps/ by make)
scraping it every 2 s, drives a mix of traffic (greedy and sampled
generations of varied lengths, each speculation method, a few refused and a
few cancelled requests), then evaluates every panel's PromQL exactly as the
dashboard has it (``$job`` = all, ``$__rate_interval`` = 20 s) with
Prometheus' query_range API and plots the panels with matplotlib into
docs/img/dashboard.png. A picture of the dashboard, not a benchmark.

    .venv/bin/python bench/dashboard.py [--seconds 90]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from tokenwire.v1 import generation_pb2, generation_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "tokenwire.json"
PROMETHEUS = ROOT / ".deps" / "bin" / "prometheus"
IMAGE = ROOT / "docs" / "img" / "dashboard.png"
RATE_INTERVAL = "20s"
SERVE_FLAGS = ("--speculate-max-decoding", "8")
"""Speculation with every stream decoding (the default stops at 1), so the acceptance panel has data."""
PROMPTS = (
    "Explain how a bicycle gear works.",
    "Write a short poem about the sea.",
    "Repeat exactly: the quick brown fox jumps over the lazy dog. The quick brown fox jumps over the dog.",
    "List five uses of a paperclip.",
    "What is the difference between weather and climate?",
)


METHODS = (
    generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_OFF,
    generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_NGRAM,
    generation_pb2.SpeculativeOptions.SPECULATIVE_METHOD_EAGLE3,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
        return body


def wait_for(check: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not come up within {timeout_s} s")


async def traffic(address: str, seconds: float, streams: int) -> None:
    rng = random.Random(0)
    end = time.monotonic() + seconds
    async with aio.insecure_channel(address) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)

        async def one() -> None:
            while time.monotonic() < end:
                request = generation_pb2.GenerateRequest(
                    text=rng.choice(PROMPTS),
                    sampling=generation_pb2.SamplingParams(temperature=rng.choice([0.0, 0.0, 0.7])),
                    stopping=generation_pb2.StoppingCriteria(max_tokens=rng.randint(16, 96)),
                    speculative=generation_pb2.SpeculativeOptions(method=rng.choice(METHODS)),
                )
                roll = rng.random()
                if roll < 0.05:
                    request.sampling.temperature = -1.0  # refused: INVALID_ARGUMENT
                call = stub.Generate(request)
                try:
                    async for response in call:
                        if roll > 0.95 and response.HasField("delta"):
                            call.cancel()  # the caller goes away mid-stream
                            break
                except grpc.aio.AioRpcError:
                    pass

        await asyncio.gather(*(one() for _ in range(streams)))


def series(
    prometheus: str, expr: str, start: float, end: float
) -> list[tuple[dict[str, str], list[float], list[float]]]:
    query = expr.replace("$__rate_interval", RATE_INTERVAL).replace('=~"$job"', '=~".*"')
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": "2"})
    document = get(f"{prometheus}/api/v1/query_range?{params}")
    if document.get("status") != "success":
        raise RuntimeError(f"{query}: {document}")
    result = []
    for item in document["data"]["result"]:
        times = [float(t) - start for t, _ in item["values"]]
        values = [float(v) for _, v in item["values"]]
        result.append((item["metric"], times, values))
    return result


def legend_of(pattern: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` placeholders filled in."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: labels.get(m.group(1), ""), pattern)


def plot(prometheus: str, start: float, end: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = json.loads(DASHBOARD.read_text())["panels"]
    columns = 2
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.2 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels, strict=False):
        for target in panel["targets"]:
            for labels, times, values in series(prometheus, target["expr"], start, end):
                legend = legend_of(target["legendFormat"], labels)
                axis.plot(times, values, label=legend)
        unit = panel["fieldConfig"]["defaults"]["unit"]
        axis.set_title(f"{panel['title']} ({unit})" if unit not in ("none", "") else panel["title"])
        axis.set_xlabel("seconds")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(IMAGE, dpi=80)
    print(f"wrote {IMAGE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=90.0, help="seconds of traffic")
    parser.add_argument("--streams", type=int, default=6, help="concurrent client streams")
    args = parser.parse_args()
    if not PROMETHEUS.exists():
        raise SystemExit(f"{PROMETHEUS} is missing: run `make {PROMETHEUS.relative_to(ROOT)}`")
    grpc_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(grpc_port), "--metrics-port",
         str(metrics_port), "--log-level", "warning", *SERVE_FLAGS],
        cwd=ROOT,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 2s, evaluation_interval: 2s}\n"
            "scrape_configs:\n"
            f"  - job_name: tokenwire\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        prometheus = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={scratch}/data",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{prometheus_port}"
        try:
            wait_for(lambda: b"tokenwire_serving 1.0" in scrape(metrics_port), "the model")
            wait_for(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=5).status == 200, "prometheus")
            wait_for(
                lambda: get(f"{base}/api/v1/query?query=tokenwire_serving")["data"]["result"], "a scrape"
            )
            start = time.time()
            asyncio.run(traffic(f"127.0.0.1:{grpc_port}", args.seconds, args.streams))
            time.sleep(6)  # the last scrapes
            end = time.time()
            plot(
                base,
                start,
                end,
                f"deploy/grafana/tokenwire.json from a real Prometheus scrape: the embedded model "
                f"({' '.join(SERVE_FLAGS)}), {args.streams} client streams, {args.seconds:g} s "
                "(bench/dashboard.py)",
            )
        finally:
            prometheus.terminate()
            server.terminate()
            prometheus.wait(30)
            server.wait(30)


if __name__ == "__main__":
    main()
