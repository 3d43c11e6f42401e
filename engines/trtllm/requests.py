"""Our requests into ``tensorrt_llm.SamplingParams``, and TensorRT-LLM's outputs back into ours.

Sources (NVIDIA/TensorRT-LLM): ``tensorrt_llm/sampling_params.py`` at
b35ac1b6 (1.2.0rc2): the ``SamplingParams`` fields, ``max_tokens = 32``,
``params_imply_greedy_decoding``, ``_get_stop_reasons_and_words``;
``tensorrt_llm/executor/result.py`` (``CompletionOutput``,
``GenerationResultBase._handle_sequence``): cumulative ``token_ids`` and
``logprobs`` updated in place, ``finish_reason`` in {stop, length, timeout,
cancelled}, ``stop_reason``, stop words trimmed from ``token_ids`` on the last
step; ``tensorrt_llm/executor/worker.py`` ``_enqueue_request``: ``ignore_eos``
becomes ``end_id=-1``.

How each of our fields reaches TensorRT-LLM:

===================  ==========================  =========================================
ours                 SamplingParams              notes
===================  ==========================  =========================================
max_tokens           max_tokens                  always explicit (TensorRT-LLM defaults to 32)
min_tokens           min_tokens                  TRT-LLM holds back only ``end_id`` before
                                                 it; our other EOS ids (sent as stop ids)
                                                 and stop_token_ids may end a request early
                                                 (native bans them too): DIFFERENT
stop_token_ids       stop_token_ids              finish 'stop' + stop_reason = the token
ignore_eos           ignore_eos                  TRT-LLM sends end_id=-1. Some versions
                                                 also drop stop words with it: we scan the
                                                 outputs for stop ids ourselves and abort
EOS ids (tokenizer)  end_id + stop_token_ids     one end_id only; the other EOS ids go in
                                                 as stop ids and map back to END_OF_SEQUENCE
temperature          temperature                 0 → greedy (params_imply_greedy_decoding);
                                                 None → 1.0 sent explicitly: TRT-LLM would
                                                 decode greedily, our native engine samples
top_p / top_k        top_p / top_k               dropped when greedy
min_p                min_p                       dropped when greedy
seed                 seed                        dropped when greedy; TorchSampler before
                                                 1.3.0rc25 has no per-request seed: REFUSED
                                                 there (engines.trtllm.capabilities)
repetition_penalty   repetition_penalty          prompt + output (as native); TorchSampler
                                                 before 1.3 ignores penalties: REFUSED there
presence/frequency   presence/frequency_penalty  + prompt_ignore_length = prompt length, so
                                                 only generated tokens count (as native)
logprobs             logprobs = max(1, top)      per-token dicts {id: Logprob(logprob, rank)}
top_logprobs         logprobs = top_logprobs     candidates = the dict's entries by rank;
                                                 TRT-LLM computes logprobs in its sampler:
                                                 whether before or after penalties and
                                                 temperature is not checked: MAY DIFFER
speculation          (none)                      fixed when the LLM is built (preset
                                                 speculative_config): a request may name the
                                                 configured method and draft length only,
                                                 anything else is REFUSED
(text)               detokenize=False            our own incremental detokenizer
(stats)              return_perf_metrics=True    see ``finish_stats`` and ``ObservedSteps``
===================  ==========================  =========================================

What the configured release would drop is refused by the service before it
gets here (``engines.trtllm.capabilities``, listed by GetModelInfo); every
other field has a mapping or an emulation.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from engines.contract import (
    EngineError,
    EngineOutput,
    EngineRequest,
    FinishReason,
    FinishStats,
    TokenId,
    TokenLogprob,
    TopLogprob,
)

DEFAULT_TEMPERATURE = 1.0
"""Sent when a request leaves temperature unset, so both engines sample by default."""


class LogprobView(Protocol):
    """``tensorrt_llm.executor.result.Logprob``: one candidate at one position."""

    @property
    def logprob(self) -> float: ...

    @property
    def rank(self) -> int | None: ...


LogprobEntry = Mapping[int, LogprobView] | float
"""One position of ``CompletionOutput.logprobs``: a top-k dict (PyTorch backend) or a bare float."""


class CompletionView(Protocol):
    """What we read of ``tensorrt_llm.executor.result.CompletionOutput`` (``result.outputs[0]``)."""

    @property
    def token_ids(self) -> Sequence[int]: ...

    @property
    def logprobs(self) -> Sequence[LogprobEntry] | None: ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def stop_reason(self) -> int | str | None: ...


def sampling_kwargs(
    request: EngineRequest,
    *,
    end_id: TokenId | None,
    other_eos: frozenset[TokenId],
    greedy_only: bool = False,
) -> dict[str, object]:
    """Keyword arguments for ``tensorrt_llm.SamplingParams`` for ``request``.

    ``end_id`` is the model's main EOS id; ``other_eos`` its further EOS ids
    (TensorRT-LLM has one ``end_id``, so these travel as stop token ids).
    ``greedy_only``: the configuration cannot sample (GetModelInfo says so), so
    an unset temperature means greedy rather than 1.0.
    """
    sampling, stopping = request.sampling, request.stopping
    kwargs: dict[str, object] = {
        "max_tokens": stopping.max_tokens,
        "detokenize": False,
        "return_perf_metrics": True,
        "ignore_eos": stopping.ignore_eos,
    }
    if end_id is not None:
        kwargs["end_id"] = end_id
    if stopping.min_tokens:
        kwargs["min_tokens"] = stopping.min_tokens
    stop_ids = list(dict.fromkeys(stopping.stop_token_ids))
    if not stopping.ignore_eos:
        stop_ids += [t for t in sorted(other_eos) if t not in stop_ids and t != end_id]
    if stop_ids:
        kwargs["stop_token_ids"] = stop_ids
    default = 0.0 if greedy_only else DEFAULT_TEMPERATURE
    temperature = default if sampling.temperature is None else sampling.temperature
    kwargs["temperature"] = temperature
    if temperature != 0.0:
        optional = {"top_p": sampling.top_p, "top_k": sampling.top_k, "min_p": sampling.min_p}
        optional["seed"] = sampling.seed
        kwargs.update({name: value for name, value in optional.items() if value is not None})
    if sampling.repetition_penalty is not None:
        kwargs["repetition_penalty"] = sampling.repetition_penalty
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(sampling, name)
        if value is not None:
            kwargs[name] = value
            # OpenAI semantics (and our native engine): only generated tokens count.
            kwargs["prompt_ignore_length"] = len(request.prompt_token_ids)
    if request.logprobs:
        kwargs["logprobs"] = max(1, request.top_logprobs)
    return kwargs


BAN_BIAS = -100.0


def embedding_bias(logit_bias: Sequence[tuple[TokenId, float]], vocab_size: int) -> torch.Tensor:
    """TensorRT-LLM's per-request ``embedding_bias`` (float32 ``[vocab]``, added to the logits by its
    samplers; the PyTorch backend's TorchSampler since 1.0) for our ``logit_bias``; -100 bans (-inf)."""
    bias = torch.zeros(vocab_size, dtype=torch.float32)
    for token, value in logit_bias:
        bias[token] = float("-inf") if value <= BAN_BIAS else value
    return bias


class OutputTracker:
    """Turns the in-place updated ``CompletionOutput`` of one request into our deltas.

    TensorRT-LLM's ``token_ids_diff`` is relative to the previous *response*;
    we keep our own cursor instead, so a trimmed stop token on the last step
    or a skipped step cannot misalign tokens and logprobs.
    """

    def __init__(
        self, request: EngineRequest, eos_token_ids: frozenset[TokenId], *, draft_length: int = 0
    ) -> None:
        """``draft_length``: draft tokens the configured speculation proposes per step (0: none)."""
        self._request = request
        self._eos = frozenset() if request.stopping.ignore_eos else eos_token_ids
        self._stop_ids = frozenset(request.stopping.stop_token_ids)
        self._draft_length = draft_length
        self._emitted = 0
        self._generated = 0
        """Tokens TensorRT-LLM produced for this request as far as we read (before our own trimming)."""
        self._iterations: int | None = None
        self.steps = 0
        """Responses that carried new tokens (one per iteration when stream_interval is 1)."""
        self.finished = False

    def update(self, completion: CompletionView, *, decoding_iter: object = None) -> EngineOutput | None:
        """The output for the tokens new since the last call (None when there is nothing to say).

        ``decoding_iter``: the result's ``decoding_iter`` (``GenerationResultBase``,
        executor/result.py): iterations that produced tokens for this request so far.
        """
        if self.finished:
            return None
        iterations = _int(decoding_iter)
        if iterations is not None and iterations > 0:
            self._iterations = iterations
        token_ids = completion.token_ids
        self._generated = max(self._generated, len(token_ids))
        new = [TokenId(t) for t in token_ids[self._emitted :]]
        reason, stop_token = self._scan(new)
        if reason is not None:
            # A stop id TensorRT-LLM let through (ignore_eos dropped its stop words):
            # end here; the engine aborts the TensorRT-LLM request.
            assert stop_token is not None
            new = new[: new.index(stop_token, self._first_checked())]
        elif completion.finish_reason is not None:
            reason, stop_token = self._finish(completion)
            if stop_token is not None and new and new[-1] == stop_token:
                new.pop()  # a version that keeps the end token in token_ids
            elif completion.finish_reason == "stop":
                self._generated += 1  # the end or stop token TensorRT-LLM left out of token_ids
        if not new and reason is None:
            return None
        start = self._emitted
        self._emitted += len(new)
        self.steps += 1 if new else 0
        logprobs = self._logprobs(completion, start, new) if self._request.logprobs else ()
        if reason is None:
            return EngineOutput(token_ids=tuple(new), logprobs=logprobs)
        self.finished = True
        perf_metrics = getattr(completion, "request_perf_metrics", None)
        return EngineOutput(
            token_ids=tuple(new),
            logprobs=logprobs,
            finish_reason=reason,
            stop_token_id=stop_token if reason is FinishReason.STOP_TOKEN else None,
            stats=finish_stats(perf_metrics, self._observed()),
        )

    def cancelled(self) -> EngineOutput:
        """The final output of a request that ended without TensorRT-LLM saying so (shutdown)."""
        self.finished = True
        return EngineOutput(finish_reason=FinishReason.CANCELLED, stats=finish_stats(None, self._observed()))

    def _observed(self) -> ObservedSteps:
        """What the stream itself says about iterations and drafts."""
        iterations = self._iterations if self._iterations is not None else self.steps
        if not self._draft_length or iterations == 0:
            return ObservedSteps(decode_steps=iterations)
        verifications = iterations - 1  # the prompt's iteration yields one token and no verified drafts
        drafted = verifications * self._draft_length
        accepted = min(drafted, max(0, self._generated - iterations))
        return ObservedSteps(decode_steps=iterations, draft_tokens=drafted, accepted_draft_tokens=accepted)

    def _first_checked(self) -> int:
        """Index into the new tokens from which stop ids count (min_tokens exempts the first ones)."""
        return max(0, self._request.stopping.min_tokens - self._emitted)

    def _scan(self, new: list[TokenId]) -> tuple[FinishReason | None, TokenId | None]:
        for token in new[self._first_checked() :]:
            if token in self._eos:
                return FinishReason.END_OF_SEQUENCE, token
            if token in self._stop_ids:
                return FinishReason.STOP_TOKEN, token
        return None, None

    def _finish(self, completion: CompletionView) -> tuple[FinishReason, TokenId | None]:
        match completion.finish_reason:
            case "length":
                return FinishReason.LENGTH, None
            case "cancelled" | "timeout":
                return FinishReason.CANCELLED, None
            case "stop":
                stop = completion.stop_reason
                if isinstance(stop, int) and stop in self._eos:
                    return FinishReason.END_OF_SEQUENCE, TokenId(stop)
                if isinstance(stop, int) and stop in self._stop_ids:
                    return FinishReason.STOP_TOKEN, TokenId(stop)
                # end_id (stop_reason None): the executor leaves it out of token_ids.
                last = completion.token_ids[-1] if completion.token_ids else None
                eos = TokenId(last) if last is not None and last in self._eos else None
                return FinishReason.END_OF_SEQUENCE, eos
            case other:
                raise EngineError(f"TensorRT-LLM finished a request with unknown reason {other!r}")

    def _logprobs(
        self, completion: CompletionView, start: int, new: list[TokenId]
    ) -> tuple[TokenLogprob, ...]:
        entries = completion.logprobs or ()
        top_n = self._request.top_logprobs
        return tuple(
            _token_logprob(token, entries[start + i], top_n)
            for i, token in enumerate(new)
            if start + i < len(entries)
        )


def _token_logprob(token: TokenId, entry: LogprobEntry, top_n: int) -> TokenLogprob:
    if not isinstance(entry, Mapping):
        return TokenLogprob(token_id=token, logprob=float(entry))
    chosen = entry.get(token)
    # TensorRT-LLM adds the sampled token to the top-k dict; -inf only if a version does not.
    value = chosen.logprob if chosen is not None else -math.inf
    ranked = sorted(entry.items(), key=lambda item: (_rank(item[1]), -item[1].logprob))
    top = tuple(TopLogprob(token_id=TokenId(i), logprob=float(v.logprob)) for i, v in ranked[:top_n])
    return TokenLogprob(token_id=token, logprob=float(value), top=top)


def _rank(candidate: LogprobView) -> int:
    rank = candidate.rank
    return rank if rank is not None else 1 << 30


@dataclass(frozen=True, slots=True)
class ObservedSteps:
    """Iterations and drafts as counted from a request's own stream (``OutputTracker``).

    Each iteration yields one token of the target's own plus the drafts it
    accepted, so with the iterations known (``decoding_iter``, or one response
    per iteration when stream_interval is 1) the accepted drafts are the tokens
    beyond one per iteration; every iteration after the prompt's verified
    ``draft_length`` drafts.
    """

    decode_steps: int
    draft_tokens: int = 0
    accepted_draft_tokens: int = 0


def finish_stats(perf_metrics: object, observed: ObservedSteps) -> FinishStats:
    """``FinishStats`` from ``CompletionOutput.request_perf_metrics`` and what the stream showed.

    Mirrors ``tensorrt_llm.bindings.executor.RequestPerfMetrics`` as TensorRT-LLM's
    own tests and trtllm-serve read it (tests/unittest/llmapi/test_llm.py
    ``test_llm_perf_metrics``; serve/openai_server.py perf metrics): ``timing_metrics``
    ``arrival_time`` / ``first_scheduled_time`` (timedelta on one steady clock),
    ``speculative_decoding.total_draft_tokens`` / ``total_accepted_draft_tokens``.
    Those draft counters stay zero on the PyTorch path before PR #17082 (1.2.1 and
    early 1.3 rcs), so they are used only when filled; the stream's count otherwise.
    """
    timing = getattr(perf_metrics, "timing_metrics", None)
    arrival = _seconds(getattr(timing, "arrival_time", None))
    scheduled = _seconds(getattr(timing, "first_scheduled_time", None))
    queued = max(0.0, scheduled - arrival) if arrival is not None and scheduled is not None else 0.0
    spec = getattr(perf_metrics, "speculative_decoding", None)
    drafted = _int(getattr(spec, "total_draft_tokens", None)) or 0
    accepted = _int(getattr(spec, "total_accepted_draft_tokens", None)) or 0
    if not drafted:
        drafted, accepted = observed.draft_tokens, observed.accepted_draft_tokens
    return FinishStats(
        queued_s=queued,
        draft_tokens=drafted,
        accepted_draft_tokens=accepted,
        decode_steps=observed.decode_steps,
    )


def _seconds(value: object) -> float | None:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
