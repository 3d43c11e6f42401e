"""Part of the TEST DOUBLE of ``tensorrt_llm`` (tests/trtllm_double.py): ``LLM`` and the double's state.

TensorRT-LLM cannot be installed here (it needs an NVIDIA GPU and NVIDIA's own
wheels). ``DoubleLLM`` records its arguments and the requests submitted to it,
runs the double executor, and knows, per release, which sampling fields the real
one would accept and then ignore (``DoubleLLM.dropped``). ``DoubleState`` is
what a test sees of the installed double; ``installed()`` starts a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from tests.trtllm_double_configs import LLM_ARGS_FIELDS, DoubleEagleDecodingConfig, DoubleSamplingParams
from tests.trtllm_double_executor import DoubleControls, DoubleExecutor, DoubleRequestOutput


class DoubleLLM:
    """``tensorrt_llm.LLM``: records its arguments, runs the double executor."""

    def __init__(self, **kwargs: object) -> None:
        unknown = sorted(set(kwargs) - LLM_ARGS_FIELDS)
        if unknown:
            raise TypeError(f"LLM got unexpected arguments {unknown}")
        if "model" not in kwargs:
            raise TypeError("LLM() missing required argument: 'model'")
        self.kwargs = dict(kwargs)
        state = _STATE
        state.llms.append(self)
        spec = kwargs.get("speculative_config")
        self._spec = spec.fields if isinstance(spec, DoubleEagleDecodingConfig) else None
        draft = self._spec.get("max_draft_len") if self._spec is not None else None
        interval = kwargs.get("stream_interval", 1)
        self._executor = DoubleExecutor(
            state.controls,
            draft if isinstance(draft, int) else 0,
            interval if isinstance(interval, int) else 1,
        )
        self.dropped: list[set[str]] = []
        """Per submitted request: the fields this release would have silently ignored."""
        max_seq_len = kwargs.get("max_seq_len")
        self.args = SimpleNamespace(
            max_seq_len=max_seq_len if isinstance(max_seq_len, int) else 8192,
            max_batch_size=kwargs.get("max_batch_size") or 2048,
        )
        self.submitted: list[DoubleSamplingParams] = []
        self.results: list[DoubleRequestOutput] = []
        self.shutdown_called = False
        self._next_id = 0

    @property
    def running_requests(self) -> int:
        return self._executor.running_requests

    @property
    def aborted_ids(self) -> list[int]:
        return list(self._executor.aborted_ids)

    def generate_async(
        self,
        inputs: object,
        sampling_params: DoubleSamplingParams | None = None,
        lora_request: object = None,
        prompt_adapter_request: object = None,
        streaming: bool = False,
        kv_cache_retention_config: object = None,
        disaggregated_params: object = None,
    ) -> DoubleRequestOutput:
        if self.shutdown_called:
            raise RuntimeError("LLM is shut down")
        params = sampling_params if sampling_params is not None else DoubleSamplingParams()
        if isinstance(inputs, dict) and "prompt_token_ids" in inputs:
            prompt = list(inputs["prompt_token_ids"])
        elif isinstance(inputs, list) and all(isinstance(i, int) for i in inputs):
            prompt = list(inputs)
        else:
            raise TypeError(f"The inputs must be type str or list of int, but got {type(inputs)}")
        max_tokens = params.int_value("max_tokens") or 32
        if len(prompt) + max_tokens > self.args.max_seq_len:  # LLM._check_arguments
            raise ValueError("The sum of prompt length and max_tokens should not exceed max_seq_len")
        dropped = self._dropped(params)
        if self._is_1_3 and self._spec is not None and dropped & set(_PENALTIES):
            raise ValueError("penalties under speculative decoding need speculative_config.enable_penalty")
        self.dropped.append(dropped)
        self._next_id += 1
        result = DoubleRequestOutput(self._executor, self._next_id, params)
        self.submitted.append(params)
        self.results.append(result)
        self._executor.submit(result, prompt, max_tokens)
        return result

    def shutdown(self) -> None:
        self.shutdown_called = True
        self._executor.shutdown()

    @property
    def _is_1_3(self) -> bool:
        return _STATE.controls.version.startswith("1.3")

    def _dropped(self, params: DoubleSamplingParams) -> set[str]:
        """The fields of ``params`` this release would accept and then not apply."""
        values = params.values
        temperature = values["temperature"]
        sampling = isinstance(temperature, int | float) and temperature > 0
        active = {
            "top_p": sampling and values["top_p"] not in (None, 1.0),
            "top_k": sampling and values["top_k"] not in (None, 0),
            "min_p": sampling and values["min_p"] not in (None, 0.0),
            "seed": sampling and values["seed"] is not None,
            "repetition_penalty": values["repetition_penalty"] not in (None, 1.0),
            "presence_penalty": values["presence_penalty"] not in (None, 0.0),
            "frequency_penalty": values["frequency_penalty"] not in (None, 0.0),
        }
        dropped: set[str] = set()
        spec = self._spec
        if spec is not None and not self._is_1_3 and spec.get("eagle3_one_model") is True:
            if spec.get("allow_advanced_sampling") is not True:  # one-model EAGLE-3 is greedy (PR #9885)
                if sampling:
                    dropped.add("temperature")
                dropped |= {f for f in ("top_p", "top_k", "min_p", "seed") if active[f]}
            else:  # the EAGLE-3 rows of the sampling table: top-k and temperature
                dropped |= {f for f in ("top_p", "min_p") if active[f]}
        if spec is not None and self._is_1_3 and active["min_p"]:
            dropped.add("min_p")
        torch_sampler = self.kwargs.get("sampler_type", "auto") != "TRTLLMSampler"
        if torch_sampler and not self._is_1_3:  # before PRs #16485 and #17172
            dropped |= {f for f in (*_PENALTIES, "seed") if active[f]}
        if self._is_1_3 and spec is not None and spec.get("enable_penalty") is not True:
            dropped |= {f for f in _PENALTIES if active[f]}
        return dropped


_PENALTIES = ("repetition_penalty", "presence_penalty", "frequency_penalty")


@dataclass(slots=True)
class DoubleState:
    """What a test sees of the installed double."""

    controls: DoubleControls = field(default_factory=DoubleControls)
    llms: list[DoubleLLM] = field(default_factory=list)
    env_at_import: dict[str, str] | None = None

    @property
    def llm(self) -> DoubleLLM:
        assert self.llms, "no LLM was built"
        return self.llms[-1]


_STATE = DoubleState()


def current_state() -> DoubleState:
    """The state of the double installed last."""
    return _STATE


def fresh_state(version: str) -> DoubleState:
    """Start the state of a newly installed double, playing ``version``."""
    global _STATE
    _STATE = DoubleState(controls=DoubleControls(version=version))
    return _STATE
