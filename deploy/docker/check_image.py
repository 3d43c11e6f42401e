"""Build-time checks for the tokenwire TensorRT-LLM image; needs no GPU.

    python3 check_image.py path/to/pyproject.toml

1. The image's TensorRT-LLM is the version pyproject.toml's ``trtllm`` extra
   pins (the engine adapter is written against that LLM API).
2. tokenwire's service and generated code import with the installed gRPC and
   protobuf (protobuf refuses generated code newer than its runtime).
3. The TensorRT-LLM engine modules import without importing tensorrt_llm
   itself (that needs a GPU driver, absent at build time).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

SERVICE_MODULES = (
    "service.cli",
    "service.server",
    "service.engine_choice",
    "tokenwire.v1.generation_pb2",
    "tokenwire.v1.model_pb2",
    "grpc_health.v1.health",
    "grpc_reflection.v1alpha.reflection",
    "uvloop",
    "structlog",
    "yaml",
)


def trtllm_pins(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extra = project.get("optional-dependencies", {}).get("trtllm", [])
    pins = []
    for requirement in extra:
        if re.match(r"\s*tensorrt[-_]llm\b", requirement, re.IGNORECASE):
            match = re.search(r"==\s*([^\s;,]+)", requirement)
            if match:
                pins.append(match.group(1))
    return pins


def main(argv: list[str]) -> int:
    problems: list[str] = []
    try:
        installed = importlib.metadata.version("tensorrt_llm")
    except importlib.metadata.PackageNotFoundError:
        print("error: tensorrt_llm is not installed: is this the NGC TensorRT-LLM image?", file=sys.stderr)
        return 1
    pins = trtllm_pins(Path(argv[1]))
    if not pins:
        print(f"warning: no tensorrt_llm==X pin in the trtllm extra; image has {installed}")
    for pin in pins:
        if pin != installed:
            problems.append(
                f"the image has tensorrt_llm {installed} but the trtllm extra pins {pin}: "
                f"build with --build-arg TRTLLM_TAG={pin} (or change the pin)"
            )
    for name in SERVICE_MODULES:
        try:
            importlib.import_module(name)
        except Exception as error:  # any failure here makes the image useless
            problems.append(f"import {name}: {error!r}")
    before = set(sys.modules)
    for name in ("engines.trtllm", "engines.trtllm.settings", "engines.trtllm.presets"):
        try:
            importlib.import_module(name)
        except Exception as error:
            problems.append(f"import {name}: {error!r}")
    if "tensorrt_llm" in set(sys.modules) - before:
        problems.append("engines.trtllm imported tensorrt_llm at import time (it must be lazy)")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"image checks passed (tensorrt_llm {installed})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
