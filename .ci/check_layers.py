"""Fails (exit 1) on an import against the layering that docs/architecture.md describes.

Rules, checked on every import statement (top level or inside functions) of the Python packages:
  1. engines/ never imports grpc, google.protobuf, google.rpc, tokenwire (the generated API) or
     service: engines know nothing of the wire.
  2. In service/, only service/engine_choice.py imports a concrete engine (engines.native,
     engines.trtllm, engines.sim); the rest of the service sees engines.contract and the shared
     engine modules only. One exception: service/cli.py's train-draft command imports the native
     engine's trainer (engines.native.eagle3.train), inside that command's function only.
  3. A concrete engine never imports another one (engines.native, engines.trtllm and engines.sim
     are independent; the shared modules are engines.contract, engines.delivery,
     engines.request_table, engines.output_stream, engines.byte_level, engines.structured),
     except the GGUF loading the simulation borrows for its real tokenizer
     (engines.native.weights, engines.native.tokenizer).
  4. The Python client and the load generator (clients/python/src/tokenwire: tokenwire.client,
     tokenwire.loadgen) depend on the API only: they never import service or engines.
  5. The EAGLE-3 trainer is not reachable from the serving path: following every import
     (function-level ones too, and the packages each import runs) from service.server and
     service.engine_choice never arrives at engines.native.eagle3.train.

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
CLI = "service/cli.py"
TRAINER = "engines.native.eagle3.train"
GGUF_LOADING = ("engines.native.weights", "engines.native.tokenizer")
CLIENT = "clients/python/src/tokenwire"
SERVING_ROOTS = ("service.server", "service.engine_choice")


def _imports(path: Path, *, imported_names: bool = False) -> Iterator[tuple[int, str, bool]]:
    """(line, module, inside a function) for every absolute import in ``path``; with
    ``imported_names``, also ``package.name`` for each ``from package import name`` (it may be a
    module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in in_function
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.lineno, node.module, id(node) in in_function
            for alias in node.names if imported_names else ():
                yield node.lineno, f"{node.module}.{alias.name}", id(node) in in_function


def _under(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules(root: Path) -> dict[str, Path]:
    modules = {}
    for package in ("service", "engines"):
        for path in (root / package).rglob("*.py"):
            modules[_module_name(path, root)] = path
    return modules


def _reachable(roots: tuple[str, ...], modules: dict[str, Path]) -> dict[str, str]:
    """Every project module an import from ``roots`` can run, each with the module that imports it."""
    seen = {root: root for root in roots if root in modules}
    todo = list(seen)
    while todo:
        current = todo.pop()
        for _, name, _ in _imports(modules[current], imported_names=True):
            parts = name.split(".")
            # Importing a.b.c runs a, a.b and a.b.c.
            for end in range(1, len(parts) + 1):
                module = ".".join(parts[:end])
                if module in modules and module not in seen:
                    seen[module] = current
                    todo.append(module)
    return seen


def violations(root: Path = ROOT) -> Iterator[str]:
    """Every import against the rules in the tree at ``root``, as ``path:line: why``."""
    for path in sorted((root / "engines").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        own = _under(rel.removesuffix(".py").replace("/", "."), CONCRETE)
        for line, name, _ in _imports(path):
            if (wire := _under(name, WIRE)) is not None:
                yield f"{rel}:{line}: engines must not import {wire} ({name})"
            other = _under(name, CONCRETE)
            borrowed = own == "engines.sim" and _under(name, GGUF_LOADING) is not None
            if other is not None and own is not None and other != own and not borrowed:
                yield f"{rel}:{line}: {own} must not import another engine ({name})"
    for path in sorted((root / "service").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == ENGINE_CHOICE:
            continue
        for line, name, in_function in _imports(path):
            if (engine := _under(name, CONCRETE)) is None:
                continue
            if rel == CLI and in_function and _under(name, (TRAINER,)) is not None:
                continue
            yield f"{rel}:{line}: only {ENGINE_CHOICE} may import a concrete engine ({engine}: {name})"
    for path in sorted((root / CLIENT).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for line, name, _ in _imports(path):
            if (server := _under(name, ("service", "engines"))) is not None:
                yield f"{rel}:{line}: the client and load generator use the API only, not {server} ({name})"
    modules = _project_modules(root)
    reached = _reachable(SERVING_ROOTS, modules)
    if TRAINER in reached:
        chain = [TRAINER]
        while chain[-1] not in SERVING_ROOTS:
            chain.append(reached[chain[-1]])
        yield f"the serving path reaches the EAGLE-3 trainer: {' <- '.join(chain)}"


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
