"""The ``tokenwire`` command in a subprocess: a command run to its end, or ``serve`` read by its logs."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

TOKENWIRE = str(Path(sys.executable).parent / "tokenwire")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOKENWIRE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


class ServeProcess:
    """``tokenwire serve`` in a subprocess, its JSON log lines read on a thread."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [TOKENWIRE, "serve", "--port", "0", "--log-format", "json", *args],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self.lines: queue.Queue[dict[str, object] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait_for(self, event: str, timeout_s: float = 120.0) -> dict[str, object]:
        """The first log record named ``event``; fails if the process ends first."""
        while (record := self.lines.get(timeout=timeout_s)) is not None:
            if record.get("event") == event:
                return record
        raise AssertionError(f"serve exited (code {self.process.wait()}) before logging {event}")
