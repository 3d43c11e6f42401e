"""Whether ``tensorrt_llm`` can be imported here, and what to do when it cannot.

TensorRT-LLM ships only as NVIDIA builds (a CUDA-specific wheel on NVIDIA's
package index, or preinstalled in NGC containers); the ``tensorrt-llm`` name on
PyPI is a stub that fetches from NVIDIA's index. So the import is lazy and its
failure is turned into one error that says how to get the package.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from engines.contract import EngineError
from engines.trtllm.versions import PINNED_VERSION, SUPPORTED_TEXT

CHECKED_AGAINST = f"TensorRT-LLM {SUPPORTED_TEXT}"
"""The TensorRT-LLM releases whose LLM API this adapter was checked against (engines/trtllm/versions.py)."""

_HOW_TO_GET_IT = (
    "TensorRT-LLM is not installed. Run tokenwire inside NVIDIA's NGC TensorRT-LLM "
    f"release container (nvcr.io/nvidia/tensorrt-llm/release:{PINNED_VERSION}), or install it from "
    f"NVIDIA's package index: pip install tensorrt-llm=={PINNED_VERSION} "
    "--extra-index-url https://pypi.nvidia.com "
    f"(needs an NVIDIA GPU and CUDA). This adapter supports {CHECKED_AGAINST}."
)


class TrtLlmUnavailable(EngineError):
    """``tensorrt_llm`` cannot be imported; the message says how to get it."""


def check_installed() -> None:
    """Raise ``TrtLlmUnavailable`` unless ``tensorrt_llm`` is importable; cheap: nothing is imported."""
    try:
        found = importlib.util.find_spec("tensorrt_llm") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise TrtLlmUnavailable(_HOW_TO_GET_IT)


def require_tensorrt_llm() -> ModuleType:
    """Import and return ``tensorrt_llm``, or raise ``TrtLlmUnavailable``.

    Apply ``TrtLlmSettings.env`` before calling this: TensorRT-LLM reads some
    variables only at import time.
    """
    try:
        return importlib.import_module("tensorrt_llm")
    except ImportError as error:
        raise TrtLlmUnavailable(f"{_HOW_TO_GET_IT} (import failed: {error})") from error


def require_llmapi() -> ModuleType:
    """``tensorrt_llm.llmapi``, where the configuration classes live."""
    require_tensorrt_llm()
    try:
        return importlib.import_module("tensorrt_llm.llmapi")
    except ImportError as error:
        raise TrtLlmUnavailable(f"{_HOW_TO_GET_IT} (import failed: {error})") from error
