"""Fails (exit 1) on an import against the layering that docs/architecture.md describes.

Rules, checked on every import statement (top level or inside functions) of the Python packages:
  1. engines/ never imports grpc, google.protobuf, google.rpc, tokenwire (the generated API) or
     service: engines know nothing of the wire.
  2. In service/, only service/engine_choice.py imports a concrete engine (engines.native,
     engines.trtllm, engines.sim); the rest of the service sees engines.contract and the shared
     engine modules only.
  3. A concrete engine never imports another one (engines.native, engines.trtllm and engines.sim
     are independent; the shared modules are engines.contract, engines.delivery,
     engines.request_table, engines.output_stream, engines.byte_level, engines.structured),
     except the GGUF loading the simulation borrows for its real tokenizer
     (engines.native.weights, engines.native.tokenizer).

    python .ci/check_layers.py   # run by `make lint`
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIRE = ("grpc", "google.protobuf", "google.rpc", "tokenwire", "service")
CONCRETE = ("engines.native", "engines.trtllm", "engines.sim")
ENGINE_CHOICE = "service/engine_choice.py"
GGUF_LOADING = ("engines.native.weights", "engines.native.tokenizer")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.lineno, node.module


def _under(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def violations() -> Iterator[str]:
    for path in sorted((ROOT / "engines").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        own = _under(rel.removesuffix(".py").replace("/", "."), CONCRETE)
        for line, name in _imports(path):
            if (wire := _under(name, WIRE)) is not None:
                yield f"{rel}:{line}: engines must not import {wire} ({name})"
            other = _under(name, CONCRETE)
            borrowed = own == "engines.sim" and _under(name, GGUF_LOADING) is not None
            if other is not None and own is not None and other != own and not borrowed:
                yield f"{rel}:{line}: {own} must not import another engine ({name})"
    for path in sorted((ROOT / "service").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == ENGINE_CHOICE:
            continue
        for line, name in _imports(path):
            if (engine := _under(name, CONCRETE)) is not None:
                yield f"{rel}:{line}: only {ENGINE_CHOICE} may import a concrete engine ({engine}: {name})"


def main() -> int:
    found = list(violations())
    for message in found:
        print(message, file=sys.stderr)
    if found:
        print(f"{len(found)} import(s) against the layering (docs/architecture.md)", file=sys.stderr)
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
