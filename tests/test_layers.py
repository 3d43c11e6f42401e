"""The layering check of `make lint` (.ci/check_layers.py), run on small made-up trees."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "check_layers", Path(__file__).resolve().parent.parent / ".ci" / "check_layers.py"
)
assert _SPEC is not None and _SPEC.loader is not None
_MODULE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_MODULE)
violations: Callable[[Path], Iterator[str]] = _MODULE.violations

CLEAN = {
    "engines/contract.py": "import enum\n",
    "engines/native/engine.py": "from engines.contract import Engine\n",
    "engines/native/eagle3/__init__.py": "",
    "engines/native/eagle3/train.py": "import torch\n",
    "engines/sim/engine.py": "from engines.native.weights import load_weights\n",
    "service/server.py": "import grpc\nfrom service import engine_choice\n",
    "service/engine_choice.py": "def build() -> None:\n    from engines.native.engine import NativeEngine\n",
    "service/cli.py": "def train_draft() -> None:\n    from engines.native.eagle3.train import train_with\n",
    "clients/python/src/tokenwire/loadgen/driver.py": "from tokenwire.v1 import generation_pb2\n",
}


def _found(tmp_path: Path, changes: dict[str, str]) -> list[str]:
    for name, text in {**CLEAN, **changes}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(violations(tmp_path))


def test_a_tree_that_keeps_the_layers_passes(tmp_path: Path) -> None:
    assert _found(tmp_path, {}) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"engines/native/engine.py": "import grpc\n"}, "engines must not import grpc"),
        ({"engines/trtllm/engine.py": "from service.config import ServeConfig\n"}, "must not import service"),
        ({"engines/trtllm/engine.py": "from engines.native.model import Model\n"}, "must not import another"),
        ({"service/runtime.py": "from engines.sim.engine import SimEngine\n"}, "only service/engine_choice"),
        # The trainer only from inside the CLI's command: at the CLI's top level it is refused.
        ({"service/cli.py": "from engines.native.eagle3.train import train\n"}, "only service/engine_choice"),
        (
            {"clients/python/src/tokenwire/loadgen/driver.py": "from engines.sim import schedule\n"},
            "use the API only, not engines",
        ),
        (
            # Reached through a function-level import two modules away from the server.
            {
                "service/engine_choice.py": "def build() -> None:\n    from engines.native import engine\n",
                "engines/native/engine.py": "def f() -> None:\n    from engines.native.eagle3 import train\n",
            },
            "the serving path reaches the EAGLE-3 trainer: engines.native.eagle3.train <- "
            "engines.native.engine <- service.engine_choice",
        ),
    ],
)
def test_each_rule_catches_its_import(tmp_path: Path, changes: dict[str, str], expected: str) -> None:
    found = _found(tmp_path, changes)
    assert any(expected in line for line in found), found


def test_the_repository_keeps_its_layers() -> None:
    assert list(violations(Path(__file__).resolve().parent.parent)) == []
