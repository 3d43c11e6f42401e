"""Everything the TensorRT-LLM engine is started with, as one validated value.

``llm_args`` holds the exact keyword arguments for ``tensorrt_llm.LLM(...)``,
as plain JSON-like data: nested configuration objects (``kv_cache_config``,
``cuda_graph_config``, ``moe_config``, ``speculative_config``, ...) are dicts
whose keys are the field names of the corresponding TensorRT-LLM classes.
The engine turns those dicts into the TensorRT-LLM classes when it starts.

Where the values come from, later layers winning key by key (nested tables
are merged, not replaced):

1. the preset (``--preset``, or ``preset = "..."`` in the config file);
2. the config file (``--engine-config``), TOML (``.toml``) or YAML
   (``.yaml``/``.yml``), with exactly these top-level keys, all optional::

       preset = "maverick-fp8-eagle3-latency"

       [llm_args]                     # tensorrt_llm.LLM keyword arguments
       max_seq_len = 8192

       [llm_args.kv_cache_config]
       free_gpu_memory_fraction = 0.8

       [env]                          # set before tensorrt_llm is imported
       TRTLLM_ENABLE_PDL = "1"

   ``null`` (YAML) switches a nullable section off, e.g.
   ``cuda_graph_config: null`` disables CUDA graphs;
3. ``--set key.path=value`` flags, in order: the value is parsed as JSON when
   it parses (``8``, ``0.8``, ``true``, ``null``, ``[1, 2]``, ``"8"``) and is
   a plain string otherwise; ``--set env.NAME=value`` sets an environment
   variable;
4. ``--model-path`` (``llm_args.model``) and ``--draft-model-path`` (the
   speculative section's draft model key, as the release spells it).

Everything is for one TensorRT-LLM release (``engines.trtllm.versions``): the
installed one, or the one ``--trtllm-version`` names. Presets are translated
into its vocabulary; the merged result is checked against that release's
schema (``engines.trtllm.schema``) before anything loads, and a
``SettingsError`` names the dotted key and the layer that set it.

Environment variables reach TensorRT-LLM's MPI workers only when their names
start with TRTLLM or TLLM (``llmapi/mpi_session.py``); every other ``env``
entry is therefore also put in ``llm_args.env_overrides``, which TensorRT-LLM
passes to the workers (PR #9104).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from engines.trtllm.presets import PRESETS, REFERENCES, for_release
from engines.trtllm.schema import llm_args_schema, validate_llm_args
from engines.trtllm.versions import Release


@dataclass(frozen=True, slots=True)
class TrtLlmSettings:
    llm_args: Mapping[str, object]
    """Keyword arguments for ``tensorrt_llm.LLM``; ``llm_args["model"]`` is the target model."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables TensorRT-LLM must see before it is imported (e.g. TRTLLM_ENABLE_PDL)."""
    preset: str | None = None
    """The preset these settings started from, if any."""
    release: Release | None = None
    """The TensorRT-LLM release the settings were validated for (None only in hand-built test values)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where the preset's values come from, per dotted key (``render_settings`` prints them)."""

    @property
    def model(self) -> str:
        model = self.llm_args.get("model")
        assert isinstance(model, str), "settings always carry a model"
        return model


class SettingsError(ValueError):
    """The TensorRT-LLM settings are unusable; the message names the key and where it was set."""


_FILE_KEYS = ("env", "llm_args", "preset")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECULATIVE = "speculative_config"
_ENV_OVERRIDES = "env_overrides"
_FORWARDED_PREFIXES = ("TRTLLM", "TLLM")
"""Environment prefixes TensorRT-LLM forwards to its MPI workers by itself."""

Table = dict[str, object]


@dataclass(slots=True)
class _Layers:
    """The merge in progress: the values, and which layer last set each dotted key."""

    llm_args: Table = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def apply(self, overlay: Mapping[str, object], source: str) -> None:
        _deep_merge(self.llm_args, overlay, prefix="", origin=self.origin, source=source)

    def source_of(self, key: str) -> str:
        # A key nobody set (a required one that is missing) is blamed on its
        # nearest set ancestor, else on the merge as a whole.
        probe = key
        while probe:
            if probe in self.origin:
                return self.origin[probe]
            probe = probe.rpartition(".")[0]
        return "the merged settings"


def load_settings(
    *,
    preset: str | None,
    config_file: Path | None,
    overrides: Sequence[str],
    model: str | None,
    draft_model: str | None,
    release: Release,
) -> TrtLlmSettings:
    """Merge preset, config file, ``--set`` overrides and model paths for ``release``; validate; return.

    Raises ``SettingsError`` for an unknown preset, an unreadable or malformed
    file, a malformed override, a missing model, or any key the schema rejects
    (unknown, wrong type, out of range). Nothing is loaded or imported.
    """
    file_data = _read_config_file(config_file, release) if config_file is not None else None
    file_source = f"config file {config_file}"
    chosen = preset
    if chosen is None and file_data is not None:
        file_preset = file_data.get("preset")
        if file_preset is not None and not isinstance(file_preset, str):
            raise SettingsError(f"{file_source}: 'preset' must be a string, got {file_preset!r}")
        chosen = file_preset

    layers = _Layers()
    sources: Mapping[str, str] = {}
    if chosen is not None:
        found = PRESETS.get(chosen)
        if found is None:
            known = ", ".join(sorted(PRESETS))
            raise SettingsError(f"unknown preset {chosen!r}; known presets: {known}")
        found = for_release(found, release)
        sources = found.sources
        layers.apply(found.llm_args, f"preset {chosen!r}")
        layers.env.update(found.env)
        for name in found.env:
            layers.origin[f"env.{name}"] = f"preset {chosen!r}"

    if file_data is not None:
        file_args = file_data.get("llm_args", {})
        layers.apply(_table(file_args, f"{file_source}: 'llm_args'"), file_source)
        file_env = _table(file_data.get("env", {}), f"{file_source}: 'env'")
        for name, value in file_env.items():
            _set_env(layers, name, value, file_source)

    for text in overrides:
        _apply_override(layers, text)

    if model is not None:
        layers.apply({"model": model}, "--model-path")
    if draft_model is not None:
        speculative = layers.llm_args.get(_SPECULATIVE)
        if not isinstance(speculative, Mapping):
            raise SettingsError(
                "--draft-model-path was given but no speculative decoding is configured; "
                "use a preset with a draft model (e.g. maverick-fp8-eagle3-latency) or set "
                f"{_SPECULATIVE}.decoding_type and {_SPECULATIVE}.max_draft_len"
            )
        for alias in release.draft_model_keys:  # the flag replaces the draft, however it was spelled
            if isinstance(section := layers.llm_args.get(_SPECULATIVE), dict):
                section.pop(alias, None)
        layers.apply({_SPECULATIVE: {release.draft_model_key: draft_model}}, "--draft-model-path")

    _forward_env(layers)
    _validate(layers, release)
    return TrtLlmSettings(
        llm_args=layers.llm_args, env=layers.env, preset=chosen, release=release, sources=sources
    )


def render_settings(settings: TrtLlmSettings) -> str:
    """The effective ``llm_args`` and ``env`` as YAML with sorted keys.

    The output is itself a valid ``--engine-config`` file: save it, edit it,
    and start from it instead of a preset.
    """
    release = settings.release
    checked = f"{release.name} ({release.line} line)" if release is not None else "no release"
    header = [
        f"# tensorrt_llm.LLM arguments, checked against {checked}",
        f"# preset: {settings.preset if settings.preset is not None else '(none)'}",
    ]
    if settings.sources:
        header.append("# where the preset's values come from:")
        header += [f"#   {key}: {source}" for key, source in sorted(settings.sources.items())]
        used = [tag for tag in REFERENCES if any(tag in source for source in settings.sources.values())]
        header += [f"#   {tag} = {REFERENCES[tag]}" for tag in used]
    body = yaml.safe_dump(
        {"llm_args": _plain(settings.llm_args), "env": dict(settings.env)},
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
    )
    return "\n".join(header) + "\n" + body


def _plain(value: object) -> object:
    # yaml.safe_dump refuses Mapping types other than dict (e.g. a preset's
    # read-only mapping), so hand it plain dicts.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_config_file(path: Path, release: Release) -> Table:
    source = f"config file {path}"
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsError(f"{source}: unknown format {path.suffix!r}; use .toml, .yaml or .yml")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{source}: cannot read it ({error.strerror or error})") from error
    data: object
    try:
        data = tomllib.loads(raw.decode("utf-8")) if suffix == ".toml" else yaml.safe_load(raw)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise SettingsError(f"{source}: not valid {suffix.lstrip('.').upper()}: {error}") from error
    if data is None:  # an empty YAML file
        return {}
    table = _table(data, source)
    for key in table:
        if key not in _FILE_KEYS:
            hint = "; LLM arguments go under 'llm_args'" if key in llm_args_schema(release).fields else ""
            raise SettingsError(
                f"{source}: unknown top-level key {key!r} (allowed: {', '.join(_FILE_KEYS)}){hint}"
            )
    return table


def _table(value: object, where: str) -> Table:
    """``value`` as a str-keyed dict (recursively), or a SettingsError naming ``where``."""
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a table of settings, got {type(value).__name__}")
    table: Table = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise SettingsError(f"{where}: keys must be strings, got {key!r}")
        table[key] = _table(item, f"{where}.{key}") if isinstance(item, Mapping) else item
    return table


def _deep_merge(
    base: Table, overlay: Mapping[str, object], *, prefix: str, origin: dict[str, str], source: str
) -> None:
    for key, value in overlay.items():
        dotted = prefix + key
        current = base.get(key)
        if isinstance(value, Mapping):
            # A table over a table merges; over anything else (absent, null, a
            # scalar) it starts afresh so stale keys cannot leak through.
            target: Table = current if isinstance(current, dict) else {}
            if not isinstance(current, dict):
                base[key] = target
                origin[dotted] = source
            _deep_merge(target, value, prefix=dotted + ".", origin=origin, source=source)
        else:
            base[key] = list(value) if isinstance(value, list) else value
            origin[dotted] = source
            for stale in [k for k in origin if k.startswith(dotted + ".")]:
                del origin[stale]


def _apply_override(layers: _Layers, text: str) -> None:
    source = f"--set {text}"
    path, sep, raw = text.partition("=")
    parts = path.strip().split(".")
    if not sep or not all(parts):
        raise SettingsError(f"{source}: expected key.path=value, e.g. kv_cache_config.dtype=fp8")
    value: object
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if parts[0] == "env":
        if len(parts) != 2:
            raise SettingsError(f"{source}: environment overrides look like env.NAME=value")
        _set_env(layers, parts[1], value, source)
        return
    overlay: object = value
    for part in reversed(parts):
        overlay = {part: overlay}
    assert isinstance(overlay, dict)
    layers.apply(overlay, source)


def _set_env(layers: _Layers, name: str, value: object, source: str) -> None:
    if not _ENV_NAME.fullmatch(name):
        raise SettingsError(f"{source}: {name!r} is not a valid environment variable name")
    # Environment values are strings; accept a bare integer (TRTLLM_ENABLE_PDL = 1)
    # but not a boolean, whose spelling ("True", "1", "true") the reader can't know.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SettingsError(f"env.{name} (from {source}): expected a string, got {value!r}")
    layers.env[name] = str(value)
    layers.origin[f"env.{name}"] = source


def _forward_env(layers: _Layers) -> None:
    """Copy env entries the MPI workers would not get into ``env_overrides`` (explicit ones win)."""
    missing = {name: value for name, value in layers.env.items() if not name.startswith(_FORWARDED_PREFIXES)}
    current = layers.llm_args.get(_ENV_OVERRIDES)
    if not missing or (current is not None and not isinstance(current, dict)):
        return  # a malformed env_overrides is reported by the schema
    explicit = current or {}
    layers.llm_args[_ENV_OVERRIDES] = {**missing, **explicit}
    for name in missing:
        if name not in explicit:
            layers.origin[f"{_ENV_OVERRIDES}.{name}"] = layers.origin.get(f"env.{name}", "env")


def _validate(layers: _Layers, release: Release) -> None:
    model = layers.llm_args.get("model")
    if model is None:
        raise SettingsError(
            "no model: pass --model-path, choose a preset "
            f"({', '.join(sorted(PRESETS))}), or set llm_args.model in the config file"
        )
    if isinstance(model, str) and not model.strip():
        raise SettingsError(f"model (from {layers.source_of('model')}): must not be empty")
    violations = validate_llm_args(layers.llm_args, release)
    if violations:
        lines = [f"{v.key} (from {layers.source_of(v.key)}): {v.message}" for v in violations]
        raise SettingsError("; ".join(lines))
