"""The TensorRT-LLM releases this adapter supports, and what differs between them.

TensorRT-LLM's configuration classes are strict (pydantic ``extra="forbid"``,
``StrictBaseModel`` in ``tensorrt_llm/llmapi/utils.py``): a key one release
knows and the next removed is a start-up error there. So tokenwire validates
settings against the release that will run them: the installed one
(``installed_version()``, read from the package metadata so that nothing is
imported), or the one named by ``--trtllm-version`` for ``tokenwire config show``.

Supported releases (tensorrt-llm on PyPI, checked 2026-11-30; the wheels are
served from NVIDIA's index):

====================  =========================================================
1.2.1                 the newest stable release (version bump PR #12754,
                      2026-04-03, release branch; Triton's tensorrtllm_backend
                      PR #853 pins ``release/1.2.1``). 1.2.0 and later 1.2.x
                      patches share its API and are treated as 1.2.1.
1.3 (rc25 and later)  the 1.3.0 release-candidate line. Earlier rcs changed the
                      LLM API from one rc to the next (see below) and are
                      refused: upgrade to a newer rc.
====================  =========================================================

What changes between them, each from TensorRT-LLM's own sources (PR numbers
on NVIDIA/TensorRT-LLM; the 1.3.0rc27 API reference at
nvidia.github.io/TensorRT-LLM/1.3.0rc27/llm-api/reference/):

- ``speculative_config.allow_advanced_sampling`` (``DecodingBaseConfig``, bool,
  default False; PR #9885, Dec 2025): on 1.2.x one-model EAGLE-3 samples only
  when it is true and is silently greedy otherwise. PR #14745 (June 2026)
  replaced it by per-step detection; 1.3 keeps the key as a deprecated no-op.
- ``eagle3_one_model``: one-model is the only EAGLE-3 mode in 1.3 (PR #17366,
  "Force 2 model spec dec to fall back to 1 model"); the key is absent from the
  1.3.0rc27 reference, so sending it there is an error.
- ``speculative_model_dir`` became ``speculative_model`` (PR #10099), the old
  name kept as an alias; 1.2.1 is documented with ``speculative_model_dir``.
- ``acceptance_window`` / ``acceptance_length_threshold`` became
  ``acceptance_rate_window_size`` / ``acceptance_rate_threshold`` (PR #12905,
  April 2026, breaking; the threshold is bounded to [0, 1]).
- ``decoding_type: Eagle3`` (``Eagle3DecodingConfig``, PR #10124) is the
  spelling NVIDIA's guides use now; ``Eagle`` is deprecated.
- ``sampler_type``: "TRTLLMSampler" was deprecated in 1.3.0rc24 and removed in
  rc26 (``_check_removed_sampler_type`` rejects it); TorchSampler is the only
  sampler on the 1.3 line.
- TorchSampler ignored repetition/presence/frequency penalties and
  ``prompt_ignore_length`` until PR #16485 (July 2026; the 1.3.0rc24 sampling
  page lists penalties) and the per-request seed until PR #17172 (2026-08-04;
  rc24 was published 2026-07-30, rc25 after 2026-08-20).
- ``request_perf_metrics.speculative_decoding`` stays zero on the PyTorch path
  until PR #17082 (2026-07-31): the adapter counts drafts from the stream.
- ``MoeConfig.backend`` gained "AUTO" (now its default) and lost "WIDEEP".
- ``batch_wait_max_tokens_ratio`` is bounded to [0, 1] (``Field(ge=0, le=1)``).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

from engines.contract import EngineError

PINNED_VERSION = "1.2.1"
"""The release the ``trtllm`` extra and the Docker image pin (deploy/docker/check_image.py checks both)."""


class UnsupportedTrtLlmVersion(EngineError):
    """A TensorRT-LLM version this adapter was not checked against."""


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A TensorRT-LLM version: ``1.2.1``, ``1.3.0rc27``, ``1.3.0rc12.post1``."""

    major: int
    minor: int
    patch: int
    rc: int | None = None
    """The release candidate number; None for a final release."""

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"rc{self.rc}" if self.rc is not None else "")


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:rc(\d+))?(?:\.post\d+)?(?:\.dev\d+)?(?:\+[\w.]+)?")


def parse_version(text: str) -> Version:
    """``text`` as a Version; raises UnsupportedTrtLlmVersion when it is not one."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise UnsupportedTrtLlmVersion(
            f"{text!r} is not a TensorRT-LLM version (e.g. 1.2.1, 1.3.0rc27); supported: {SUPPORTED_TEXT}"
        )
    major, minor, patch, rc = match.groups()
    return Version(int(major), int(minor), int(patch or 0), None if rc is None else int(rc))


@dataclass(frozen=True, slots=True)
class Release:
    """One supported TensorRT-LLM line and the API facts the adapter needs about it."""

    line: str
    """How the line is named in flags and messages: "1.2.1" or "1.3"."""
    version: Version
    """The exact version this Release describes (what is installed, or what was asked for)."""
    summary: str
    eagle3_one_model_key: bool
    """``EagleDecodingConfig.eagle3_one_model`` exists (1.2.x); absent on 1.3."""
    allow_advanced_sampling_key: bool
    """``allow_advanced_sampling`` gates sampling under one-model EAGLE-3 (1.2.x); a no-op on 1.3."""
    draft_model_key: str
    """Where presets put the draft checkpoint: ``speculative_model_dir`` (1.2.1), ``speculative_model``."""
    draft_model_keys: tuple[str, ...]
    """Every accepted spelling of the draft checkpoint key (1.3 keeps the old one as an alias)."""
    acceptance_keys: tuple[str, str]
    """(window, threshold) of acceptance-rate based speculation off-switching."""
    samplers: tuple[str, ...]
    """Accepted ``sampler_type`` values."""
    moe_backends: tuple[str, ...]
    torch_sampler_penalties: bool
    """TorchSampler applies repetition/presence/frequency penalties (PR #16485)."""
    torch_sampler_seed: bool
    """TorchSampler honours a per-request seed (PR #17172)."""
    penalty_gate_key: bool
    """1.3: ``speculative_config.enable_penalty`` must be true for penalties under speculation."""

    @property
    def name(self) -> str:
        """The exact version, e.g. "TensorRT-LLM 1.3.0rc27"."""
        return f"TensorRT-LLM {self.version}"


_MOE_BACKENDS_1_2 = ("CUTLASS", "CUTEDSL", "WIDEEP", "TRTLLM", "DEEPGEMM", "VANILLA", "TRITON")
_MOE_BACKENDS_1_3 = (
    "AUTO",
    "CUTLASS",
    "CUTEDSL",
    "TRTLLM",
    "DEEPGEMM",
    "DENSEGEMM",
    "VANILLA",
    "TRITON",
    "MARLIN",
)
_FIRST_1_3_RC = 25


def release_for(version: str | Version) -> Release:
    """The supported line of ``version``; raises UnsupportedTrtLlmVersion naming the supported ones."""
    parsed = parse_version(version) if isinstance(version, str) else version
    if (parsed.major, parsed.minor) == (1, 2) and parsed.rc is None:
        return Release(
            line="1.2.1",
            version=parsed,
            summary="stable",
            eagle3_one_model_key=True,
            allow_advanced_sampling_key=True,
            draft_model_key="speculative_model_dir",
            draft_model_keys=("speculative_model_dir",),
            acceptance_keys=("acceptance_window", "acceptance_length_threshold"),
            samplers=("auto", "TorchSampler", "TRTLLMSampler"),
            moe_backends=_MOE_BACKENDS_1_2,
            torch_sampler_penalties=False,
            torch_sampler_seed=False,
            penalty_gate_key=False,
        )
    if (parsed.major, parsed.minor) == (1, 3) and (parsed.rc is None or parsed.rc >= _FIRST_1_3_RC):
        return Release(
            line="1.3",
            version=parsed,
            summary="release candidates" if parsed.rc is not None else "stable",
            eagle3_one_model_key=False,
            allow_advanced_sampling_key=False,
            draft_model_key="speculative_model",
            draft_model_keys=("speculative_model", "speculative_model_dir"),
            acceptance_keys=("acceptance_rate_window_size", "acceptance_rate_threshold"),
            samplers=("auto", "TorchSampler"),
            moe_backends=_MOE_BACKENDS_1_3,
            torch_sampler_penalties=True,
            torch_sampler_seed=True,
            penalty_gate_key=True,
        )
    raise UnsupportedTrtLlmVersion(
        f"TensorRT-LLM {parsed} is not supported; supported: {SUPPORTED_TEXT}. "
        "Run a supported release (pip install tensorrt-llm==1.2.1 from https://pypi.nvidia.com, "
        f"or the NGC image nvcr.io/nvidia/tensorrt-llm/release:{PINNED_VERSION})"
    )


SUPPORTED_TEXT = f"1.2.1 (stable; 1.2.x), 1.3 (1.3.0rc{_FIRST_1_3_RC} and later)"
SUPPORTED_LINES = ("1.2.1", "1.3")
"""What ``--trtllm-version`` accepts besides exact versions ("1.3" means the newest 1.3 rc known)."""

_LINE_VERSIONS = {"1.2.1": Version(1, 2, 1), "1.3": Version(1, 3, 0, rc=27)}
"""A line name alone stands for these versions (1.3.0rc27: the newest API reference read)."""


def release_named(text: str) -> Release:
    """``--trtllm-version``: a line name ("1.2.1", "1.3") or an exact version ("1.3.0rc26")."""
    return release_for(_LINE_VERSIONS.get(text.strip()) or parse_version(text))


def installed_version() -> str | None:
    """The installed tensorrt_llm version, from package metadata (nothing is imported); None if absent."""
    for name in ("tensorrt_llm", "tensorrt-llm"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
