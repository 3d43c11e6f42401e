"""Which request fields TensorRT-LLM honours as configured, decided once at start-up.

A field TensorRT-LLM would accept and then drop is refused by the service
instead (INVALID_ARGUMENT naming the field, from ``EngineInfo.unsupported_fields``),
and GetModelInfo lists it, so clients can see what this server does. What
decides it (``engines.trtllm.versions`` has each source):

- **One-model EAGLE-3 on 1.2.x** samples only with
  ``speculative_config.allow_advanced_sampling`` (PR #9885; the presets set it).
  Without it every request is decoded greedily: temperature is refused unless 0,
  and so are the other sampling fields. With it, the sampling support table of
  that era lists top-k and temperature for EAGLE-3 (PR #10083), so top_p and
  min_p are refused. On 1.3 the EAGLE-3 sampler detects greedy steps itself and
  honours temperature, top-k and top-p (PR #14745, ``advanced_sampling_mode``
  "full"); min_p is refused.
- **TorchSampler** (``sampler_type`` "auto" picks it unless a request uses beam
  search, which tokenwire never does; 1.3 has no other sampler) ignores
  repetition/presence/frequency penalties before 1.3 (PR #16485) and the
  per-request seed before 1.3.0rc25 (PR #17172). 1.2.1's TRTLLMSampler
  (``sampler_type: TRTLLMSampler``, without speculation) applies both.
- **Penalties under speculation on 1.3** need ``speculative_config.enable_penalty``;
  TensorRT-LLM refuses such requests at admission otherwise.
- **Speculation** is fixed when the LLM is built: a request may name the
  configured method and draft length, nothing else (``speculative_options``).
"""

from __future__ import annotations

from collections.abc import Mapping

from engines.contract import SpeculationMethod, SpeculativeConfig, UnsupportedField
from engines.trtllm.schema import EAGLE3_DECODING_TYPES
from engines.trtllm.versions import Release


def speculative_section(llm_args: Mapping[str, object]) -> Mapping[str, object] | None:
    """The EAGLE-3 ``speculative_config`` section, when the settings speculate."""
    section = llm_args.get("speculative_config")
    if isinstance(section, Mapping) and section.get("decoding_type") in EAGLE3_DECODING_TYPES:
        return section
    return None


def draft_length(llm_args: Mapping[str, object]) -> int:
    """Draft tokens per step (``max_draft_len``); 0 when the settings do not speculate."""
    section = speculative_section(llm_args)
    length = section.get("max_draft_len") if section is not None else None
    return length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else 0


def speculative_config(llm_args: Mapping[str, object]) -> SpeculativeConfig:
    """What GetModelInfo reports: EAGLE-3 with its draft length, or off; the only choice a request has."""
    length = draft_length(llm_args)
    if not length:
        return SpeculativeConfig(available_methods=(SpeculationMethod.OFF,))
    section = speculative_section(llm_args)
    assert section is not None
    drafts = [v for k, v in section.items() if k in ("speculative_model", "speculative_model_dir")]
    return SpeculativeConfig(
        method=SpeculationMethod.EAGLE3,
        draft_length=length,
        available_methods=(SpeculationMethod.EAGLE3,),
        draft_model=str(drafts[0]) if drafts else "",
    )


def unsupported_fields(llm_args: Mapping[str, object], release: Release) -> tuple[UnsupportedField, ...]:
    """The request fields this configuration of ``release`` would not honour, each with why."""
    name = release.name
    spec = speculative_section(llm_args)
    found: list[UnsupportedField] = []

    def refuse(field: str, reason: str, allowed: float | None = None) -> None:
        found.append(UnsupportedField(field=f"sampling.{field}", reason=reason, allowed=allowed))

    # 1.3 has no other EAGLE-3 mode; on 1.2.x the presets set eagle3_one_model.
    one_model = spec is not None and (
        not release.eagle3_one_model_key or spec.get("eagle3_one_model") is True
    )
    greedy_only = (
        one_model
        and spec is not None
        and release.allow_advanced_sampling_key
        and spec.get("allow_advanced_sampling") is not True
    )
    if greedy_only:
        why = (
            f"{name} decodes one-model EAGLE-3 greedily unless "
            "speculative_config.allow_advanced_sampling is true (PR #9885)"
        )
        refuse("temperature", why, allowed=0.0)
        refuse("top_p", why, allowed=1.0)
        refuse("top_k", why)
        refuse("min_p", why, allowed=0.0)
        refuse("logit_bias", why)
    elif one_model and release.allow_advanced_sampling_key:
        why = f"{name} samples one-model EAGLE-3 with temperature and top-k only (PR #10083's support table)"
        refuse("top_p", why, allowed=1.0)
        refuse("min_p", why, allowed=0.0)
        # embedding_bias is applied by TorchSampler's own sampling path; nothing shows the one-model
        # drafter's sampling applies it, so it is refused rather than possibly dropped.
        refuse("logit_bias", why)
    elif spec is not None and not release.eagle3_one_model_key:
        why = f"{name} samples EAGLE-3 with temperature, top-k and top-p only (PR #14745)"
        refuse("min_p", why, allowed=0.0)

    sampler = llm_args.get("sampler_type", "auto")
    torch_sampler = sampler != "TRTLLMSampler"
    if torch_sampler and not release.torch_sampler_seed and not greedy_only:
        refuse("seed", f"{name}'s TorchSampler has no per-request seed (added by PR #17172, 1.3.0rc25)")
    elif greedy_only:
        refuse("seed", f"{name} decodes greedily here (see sampling.temperature)")
    penalties: str | None = None
    if torch_sampler and not release.torch_sampler_penalties:
        penalties = f"ignored by {name}'s TorchSampler (applied from 1.3.0rc24, PR #16485)"
    elif spec is not None and release.penalty_gate_key and spec.get("enable_penalty") is not True:
        penalties = (
            f"{name} refuses penalties under speculative decoding unless "
            "speculative_config.enable_penalty is true"
        )
    if penalties is not None:
        refuse("repetition_penalty", penalties, allowed=1.0)
        refuse("presence_penalty", penalties, allowed=0.0)
        refuse("frequency_penalty", penalties, allowed=0.0)

    length = draft_length(llm_args)
    if length:
        reason = f"fixed at start-up by speculative_config.max_draft_len ({length})"
        found.append(UnsupportedField("speculative.draft_length", reason, allowed=float(length)))
    else:
        reason = "this server does not speculate (no speculative_config)"
        found.append(UnsupportedField("speculative.draft_length", reason))
    return tuple(found)
