"""``TrtLlmSettings`` → the keyword arguments of ``tensorrt_llm.LLM``.

The settings carry nested sections as plain dicts (they come from presets and
config files). ``tensorrt_llm.LLM`` validates its arguments with pydantic
models, so each known section becomes the TensorRT-LLM class named for it in
``tensorrt_llm/llmapi/llm_args.py``; a dict under any other key is refused
here, at start-up, rather than failing somewhere inside TensorRT-LLM.

The speculative section is chosen by ``decoding_type``, the discriminator
TensorRT-LLM itself uses (``DecodingBaseConfig.from_dict`` in 1.1/1.2-era
llm_args.py; a pydantic ``Literal`` field on each class in later versions).
The key is removed before the class is built: in 1.2.0rc2 ``decoding_type`` is
a ``ClassVar`` and the strict models refuse it as an argument; in the 1.3 rcs
it is a pydantic ``Literal`` field whose default is the class's own type, so
leaving it out changes nothing there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import structlog

from engines.contract import EngineError
from engines.trtllm.availability import require_llmapi, require_tensorrt_llm
from engines.trtllm.settings import TrtLlmSettings

_log = structlog.get_logger(__name__)

SECTION_CLASSES: Mapping[str, str] = {
    "kv_cache_config": "KvCacheConfig",
    "cuda_graph_config": "CudaGraphConfig",
    "moe_config": "MoeConfig",
}
"""LLM argument → class in ``tensorrt_llm.llmapi`` (TorchLlmArgs / BaseLlmArgs fields of those types)."""

SPECULATIVE_CLASSES: Mapping[str, tuple[str, ...]] = {
    # On the PyTorch backend, "Eagle" already means EAGLE-3 (EagleDecodingConfig.spec_dec_mode
    # is EAGLE3 or EAGLE3_ONE_MODEL). PR #10124 added Eagle3DecodingConfig and deprecated "Eagle";
    # a release without it builds EagleDecodingConfig for "Eagle3", which drives the same code path.
    "Eagle": ("EagleDecodingConfig",),
    "Eagle3": ("Eagle3DecodingConfig", "EagleDecodingConfig"),
}
"""``speculative_config.decoding_type`` → candidate classes in ``tensorrt_llm.llmapi``, first found wins."""

EAGLE3_DECODING_TYPES = frozenset(SPECULATIVE_CLASSES)

PLAIN_DICT_ARGS = frozenset({"cp_config", "env_overrides"})
"""LLM arguments whose TensorRT-LLM type is a plain dict (BaseLlmArgs.cp_config, .env_overrides)."""


class TrtLlmConfigError(EngineError):
    """The settings name something this adapter cannot hand to TensorRT-LLM."""


@dataclass(frozen=True, slots=True)
class TrtLlmModules:
    """The imported TensorRT-LLM package and its ``llmapi`` submodule."""

    tensorrt_llm: ModuleType
    llmapi: ModuleType


def apply_env(env: Mapping[str, str]) -> None:
    """Set ``env`` in ``os.environ``; TensorRT-LLM reads some of these only when it is imported."""
    for name, value in env.items():
        if name in os.environ and os.environ[name] != value:
            _log.info("trtllm_env_override", name=name)
        os.environ[name] = value


def import_tensorrt_llm(settings: TrtLlmSettings) -> TrtLlmModules:
    """Apply ``settings.env``, then import TensorRT-LLM (in that order, always)."""
    apply_env(settings.env)
    return TrtLlmModules(tensorrt_llm=require_tensorrt_llm(), llmapi=require_llmapi())


def speculative_decoding_type(llm_args: Mapping[str, object]) -> str | None:
    """``decoding_type`` of the speculative section, if the settings have one."""
    section = llm_args.get("speculative_config")
    if not isinstance(section, Mapping):
        return None
    decoding_type = section.get("decoding_type")
    return decoding_type if isinstance(decoding_type, str) else None


def llm_kwargs(llm_args: Mapping[str, object], llmapi: ModuleType) -> dict[str, object]:
    """Keyword arguments for ``tensorrt_llm.LLM``: nested dicts become TensorRT-LLM config objects.

    Raises ``TrtLlmConfigError`` for a nested section without a known class, an
    unknown ``decoding_type``, or a class this TensorRT-LLM does not have.
    """
    kwargs: dict[str, object] = {}
    for name, value in llm_args.items():
        if not isinstance(value, Mapping) or name in PLAIN_DICT_ARGS:
            kwargs[name] = value
        elif name == "speculative_config":
            kwargs[name] = _speculative_config(value, llmapi)
        elif name in SECTION_CLASSES:
            kwargs[name] = _construct(llmapi, SECTION_CLASSES[name], name, value)
        else:
            known = ", ".join(sorted([*SECTION_CLASSES, "speculative_config"]))
            raise TrtLlmConfigError(
                f"llm_args.{name} is a nested section this adapter does not know how to build "
                f"(known sections: {known})"
            )
    return kwargs


def _speculative_config(section: Mapping[str, object], llmapi: ModuleType) -> object:
    fields = dict(section)
    decoding_type = fields.pop("decoding_type", None)
    if not isinstance(decoding_type, str) or decoding_type not in SPECULATIVE_CLASSES:
        known = ", ".join(sorted(SPECULATIVE_CLASSES))
        raise TrtLlmConfigError(
            f"llm_args.speculative_config.decoding_type must be one of {known}; got {decoding_type!r}"
        )
    for class_name in SPECULATIVE_CLASSES[decoding_type]:
        if hasattr(llmapi, class_name):
            return _construct(llmapi, class_name, "speculative_config", fields)
    wanted = " or ".join(SPECULATIVE_CLASSES[decoding_type])
    raise TrtLlmConfigError(f"this TensorRT-LLM has no tensorrt_llm.llmapi.{wanted}")


def _construct(llmapi: ModuleType, class_name: str, arg_name: str, fields: Mapping[str, object]) -> object:
    config_class = getattr(llmapi, class_name, None)
    if config_class is None:
        raise TrtLlmConfigError(f"this TensorRT-LLM has no tensorrt_llm.llmapi.{class_name}")
    try:
        return config_class(**fields)
    except (TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise TrtLlmConfigError(f"llm_args.{arg_name}: {class_name} refused it: {error}") from error
