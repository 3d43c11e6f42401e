"""Shared by the benchmark scripts: the machine line and replacing one section of a Markdown file."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """CPU model, core count and Python version, for the line under each table."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def replace_section(out: Path, section: str) -> None:
    """Put ``section`` (starting with its ``## `` title line) in ``out``, replacing the old one."""
    title = section.splitlines()[0]
    text = (
        out.read_text()
        if out.exists()
        else "# Benchmarks\n\nNumbers measured on our machines; each section names its command.\n"
    )
    if title in text:
        start = text.index(title)
        following = text.find("\n## ", start + len(title))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
