"""A TEST DOUBLE of the ``tensorrt_llm`` package, used only because the real one cannot run here.

TensorRT-LLM needs an NVIDIA GPU and NVIDIA's own wheels; these tests run on
CPU-only machines. ``installed()`` puts this double on ``sys.meta_path`` so
that ``import tensorrt_llm`` / ``import tensorrt_llm.llmapi`` load it, and
records the environment as it was at import time.

It reproduces the documented behaviour the adapter relies on (sources are
NVIDIA/TensorRT-LLM files; ``sampling_params.py`` at b35ac1b6 = 1.2.0rc2, the
others as stored in the reference index, 1.x):

- ``LLM.generate_async(inputs, sampling_params, streaming=True)`` returns a
  result whose ``outputs[0]`` (a ``CompletionOutput``) is updated IN PLACE at
  each step when the consumer dequeues the step's response: ``token_ids``
  grows, ``token_ids_diff`` holds the step's tokens, ``logprobs`` is replaced
  by the cumulative list, ``finish_reason`` / ``stop_reason`` are set on the
  last step and a matched stop token is trimmed from ``token_ids``
  (executor/result.py ``GenerationResultBase._handle_sequence``);
  ``__anext__`` raises ``StopAsyncIteration`` once done (``GenerationResult.__anext__``).
- ``abort()`` asks the executor to cancel; the last response then arrives with
  ``finish_reason == 'cancelled'`` (``GenerationResult.abort``, ``_handle_sequence``).
- A per-request executor error surfaces as an exception from ``__anext__``
  (``_handle_response`` → background error handler → ``RequestError``).
- ``ignore_eos`` makes the executor request use ``end_id=-1``
  (executor/worker.py ``_enqueue_request``); the end token is not part of the
  output (TensorRT-LLM issue 2190: "generation will stop at the endId, but not
  include it"); ``min_tokens`` holds back only the end token.
- Each step yields 1 to 4 tokens when an EAGLE config is given (target token plus
  accepted drafts), from a deterministic script derived from the prompt.
- ``request_perf_metrics`` (with ``return_perf_metrics``) mirrors
  ``RequestPerfMetrics``: ``timing_metrics`` timedeltas, ``speculative_decoding``
  totals, ``first_iter`` / ``last_iter`` (tests/unittest/llmapi/test_llm.py
  ``test_llm_perf_metrics``).
- Config classes accept only the field names of the real ones and reject any
  other keyword, as the real strict pydantic models do, in the shape of the
  release ``installed(version=...)`` names: 1.2.1 (``eagle3_one_model``,
  ``allow_advanced_sampling``, ``speculative_model_dir``, ``acceptance_window``)
  or the 1.3 rcs (no ``eagle3_one_model``; ``speculative_model`` with the old
  name as an alias; ``acceptance_rate_*``; ``enable_penalty``). The package
  metadata reports that version too (``importlib.metadata``), as a wheel would.
- Streaming follows ``PyExecutor._handle_responses``: a response after the
  first iteration, every ``stream_interval``-th iteration and the last; the
  first (prompt) iteration yields one token, later ones 1 + accepted drafts;
  ``RequestOutput.decoding_iter`` counts the iterations so far. The
  speculative counters of ``request_perf_metrics`` stay zero, as on the
  PyTorch path before PR #17082.
- ``LLM.dropped`` records, per request, the fields the real release would
  have accepted and then ignored (TorchSampler's penalties and seed on 1.2.1;
  sampling under one-model EAGLE-3 without ``allow_advanced_sampling``, and
  top_p/min_p with it; min_p under EAGLE-3 on 1.3). A correct adapter never
  lets such a request through. On 1.3 a penalty under speculation without
  ``enable_penalty`` is refused at admission, as TensorRT-LLM does.

The double is split by concern: tests/trtllm_double_configs.py (the config
classes of each release), tests/trtllm_double_executor.py (the executor and
its streaming outputs), tests/trtllm_double_llm.py (``LLM`` and the state a
test sees); this module installs it and is where tests import it from.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import pathlib
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from tests.trtllm_double_configs import (
    DoubleCudaGraphConfig,
    DoubleEagle3DecodingConfig,
    DoubleEagle3DecodingConfig13,
    DoubleEagleDecodingConfig,
    DoubleEagleDecodingConfig13,
    DoubleGuidedDecodingParams,
    DoubleKvCacheConfig,
    DoubleMoeConfig,
    DoubleSamplingParams,
)
from tests.trtllm_double_executor import (
    DoubleCompletionOutput,
    DoubleControls,
    DoubleLogprob,
    DoubleRequestError,
    DoubleRequestOutput,
    SpecTruth,
    double_tokens,
    tokens_per_step,
)
from tests.trtllm_double_llm import DoubleLLM, DoubleState, current_state, fresh_state

__all__ = [
    "DoubleCompletionOutput",
    "DoubleControls",
    "DoubleCudaGraphConfig",
    "DoubleEagle3DecodingConfig",
    "DoubleEagle3DecodingConfig13",
    "DoubleEagleDecodingConfig",
    "DoubleEagleDecodingConfig13",
    "DoubleGuidedDecodingParams",
    "DoubleKvCacheConfig",
    "DoubleLLM",
    "DoubleLogprob",
    "DoubleMoeConfig",
    "DoubleRequestError",
    "DoubleRequestOutput",
    "DoubleSamplingParams",
    "DoubleState",
    "SpecTruth",
    "double_tokens",
    "installed",
    "tokens_per_step",
]


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.LLM = DoubleLLM  # type: ignore[attr-defined]  # building a module namespace
        module.SamplingParams = DoubleSamplingParams  # type: ignore[attr-defined]  # same
        version = current_state().controls.version
        if module.__name__ == "tensorrt_llm":
            module.__version__ = version  # type: ignore[attr-defined]  # same
            current_state().env_at_import = dict(os.environ)
            return
        is_1_3 = version.startswith("1.3")
        names = {
            "KvCacheConfig": DoubleKvCacheConfig,
            "CudaGraphConfig": DoubleCudaGraphConfig,
            "MoeConfig": DoubleMoeConfig,
            "EagleDecodingConfig": DoubleEagleDecodingConfig13 if is_1_3 else DoubleEagleDecodingConfig,
            "Eagle3DecodingConfig": DoubleEagle3DecodingConfig13 if is_1_3 else DoubleEagle3DecodingConfig,
            "RequestError": DoubleRequestError,
            "GuidedDecodingParams": DoubleGuidedDecodingParams,
        }
        for name, value in names.items():
            setattr(module, name, value)


class _Distribution(importlib.metadata.Distribution):
    """The installed-package metadata of the double, as a tensorrt_llm wheel would have it."""

    def __init__(self, version: str) -> None:
        self._version = version

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: tensorrt_llm\nVersion: {self._version}\n"
        return None

    def locate_file(self, path: str | os.PathLike[str]) -> pathlib.Path:
        raise FileNotFoundError(path)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ("tensorrt_llm", "tensorrt_llm.llmapi"):
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context | None = None
    ) -> Iterator[importlib.metadata.Distribution]:
        name = context.name if context is not None else None
        if name in (None, "tensorrt_llm", "tensorrt-llm"):
            yield _Distribution(current_state().controls.version)


def _drop_modules() -> None:
    for name in [n for n in sys.modules if n == "tensorrt_llm" or n.startswith("tensorrt_llm.")]:
        del sys.modules[name]


@contextlib.contextmanager
def installed(version: str = "1.2.1") -> Iterator[DoubleState]:
    """Make ``import tensorrt_llm`` load this double, playing ``version``, (fresh state) for the duration."""
    state = fresh_state(version)
    finder = _Finder()
    _drop_modules()
    sys.meta_path.insert(0, finder)
    try:
        yield state
    finally:
        sys.meta_path.remove(finder)
        _drop_modules()
        for llm in current_state().llms:
            if not llm.shutdown_called:
                llm.shutdown()
