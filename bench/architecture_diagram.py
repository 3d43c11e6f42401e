"""docs/img/request-sequence.png: the life of one Generate request, as a sequence diagram.

Not a benchmark: a picture for docs/architecture.md, drawn with matplotlib from the list of
steps below (so it changes in review like code).

    .venv/bin/python bench/architecture_diagram.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "request-sequence.png"

LANES = [
    ("client", "client\n(any language)"),
    ("grpc", "grpc.aio server\n+ CallInterceptor"),
    ("servicer", "GenerationServicer\n(event loop)"),
    ("prepare", "validation / Offload\n+ FormatCompiler\n(threads)"),
    ("runner", "GenerationRunner\n+ RequestRegistry"),
    ("engine", "Engine: scheduler\n(worker thread)"),
]
STEPS: list[tuple[str, str, str]] = [
    ("client", "grpc", "Generate(GenerateRequest)"),
    ("grpc", "servicer", "auth, metrics, span; decode checked"),
    ("servicer", "prepare", "validate, tokenize (large input: off the loop)"),
    ("prepare", "prepare", "structured output: compile (cached, time limit)"),
    ("prepare", "servicer", "PreparedGeneration | INVALID_ARGUMENT"),
    ("servicer", "runner", "claim(id): ticket | ALREADY_EXISTS"),
    ("runner", "engine", "engine.generate(EngineRequest): submit | RESOURCE_EXHAUSTED"),
    ("runner", "servicer", "Started"),
    ("servicer", "client", "started"),
    ("engine", "engine", "admit; prefill / decode / verify steps"),
    ("engine", "runner", "EngineOutput (tokens, coalesced if the reader lags)"),
    ("runner", "servicer", "Delta: detokenized, stop strings cut"),
    ("servicer", "client", "delta (flow control: StallWatch)"),
    ("engine", "runner", "last EngineOutput: finish reason, stats"),
    ("runner", "servicer", "Finished; ticket released, slot freed"),
    ("servicer", "client", "finished, then OK (+ ORCA trailer)"),
]


def draw() -> None:
    x = {key: index for index, (key, _) in enumerate(LANES)}
    rows = len(STEPS)
    fig, ax = plt.subplots(figsize=(13, 0.5 * rows + 2.2))
    ax.set_xlim(-0.6, len(LANES) - 0.4)
    ax.set_ylim(rows + 0.6, -1.6)
    ax.axis("off")
    for key, label in LANES:
        box = {"boxstyle": "round", "facecolor": "#eef3fb", "edgecolor": "#5b7db1"}
        ax.text(x[key], -1.0, label, ha="center", va="center", fontsize=9, weight="bold", bbox=box)
        ax.plot([x[key], x[key]], [-0.4, rows + 0.4], color="#9aa9bf", linewidth=1, linestyle="--")
    for row, (source, target, label) in enumerate(STEPS):
        y = row + 0.3
        if source == target:
            loop = {"arrowstyle": "-|>", "connectionstyle": "arc3,rad=-1.2", "color": "#444"}
            ax.annotate("", xy=(x[source] + 0.05, y + 0.25), xytext=(x[source] + 0.05, y), arrowprops=loop)
            ax.text(x[source] + 0.18, y + 0.12, label, fontsize=8, va="center")
            continue
        arrow = {"arrowstyle": "-|>", "color": "#2d5aa0", "linewidth": 1.2}
        ax.annotate("", xy=(x[target], y), xytext=(x[source], y), arrowprops=arrow)
        ax.text((x[source] + x[target]) / 2, y - 0.12, label, fontsize=8, ha="center", va="bottom")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    draw()
