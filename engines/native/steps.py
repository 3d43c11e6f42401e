"""The target model's steps, as plain functions over model, cache and requests.

In the shape of gpt-fast's ``prefill`` / ``decode_one_token`` /
``speculative_decode``: ``prefill_chunk``, ``decode`` and ``verify`` each run
one forward pass, sample, apply the stop rules and return what every request
emitted. None takes a lock, touches a queue or publishes anything: they change
only the cache slots and the ``RequestState`` of the requests they are given
(output, prompt progress, sampler history, step counters). Which requests take
which step, and what becomes of the results, is the scheduler's business.

Verification walks the k+1 positions of ``[last token, d1 .. dk]`` in order,
each through the request's own logits processing as it stands after the tokens
before it (penalties, the min_tokens ban and the RNG all see exactly the
history the token would have had without speculation): a draft is accepted
(greedy: it is the argmax; sampled: rejection sampling, see
``RequestSampler.verify``) or replaced by the target's own token, which ends
the step; when all k are accepted, the last position gives a bonus token. A
stop token, end-of-sequence or max_tokens in the run ends the request there and
the rest is dropped. All tokens of the step reach the consumer as one output.
Rejected drafts left keys and values in the slot beyond the accepted length;
positions are derived from the accepted length, so the next forward overwrites
them and the causal mask never reads them: rolling back is free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engines.contract import FinishReason, TokenId, TokenLogprob
from engines.native.kv_cache import KVCache
from engines.native.model import Transformer
from engines.native.request_state import RequestState
from engines.native.sampling import SampledToken, sample_batch


@dataclass(frozen=True, slots=True)
class Emitted:
    """What one step gave one request: its new tokens, and whether they ended it."""

    tokens: tuple[TokenId, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    reason: FinishReason | None = None
    """Set when the step ended the request."""
    stop_token: TokenId | None = None
    """With ``FinishReason.STOP_TOKEN``: the token that matched (not one of ``tokens``)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One request's part in one forward pass."""

    emitted: Emitted | None
    """None for a prompt chunk short of the prompt's end: it emits nothing yet."""
    features: torch.Tensor | None = None
    """When feature layers were asked for: the target's hidden states there, ``[n, 3 dim]``,
    at the ``n`` positions this pass computed on the right prefix (what a drafter reads)."""
    failure: Exception | None = None
    """Set when the shared pass went well but this request's own part (sampling, stop checks)
    raised: the request must end with an error, and nothing else is affected."""


def prefill_chunk(
    model: Transformer,
    cache: KVCache,
    state: RequestState,
    n_tokens: int,
    feature_layers: Sequence[int] | None,
) -> Step:
    """Run the request's next ``n_tokens`` prompt tokens; the chunk that ends the prompt also
    samples the first output token (and counts as a decode step: it yields a token)."""
    start = state.prefilled
    chunk = state.request.prompt_token_ids[start : start + n_tokens]
    tokens = torch.tensor([chunk], dtype=torch.long)
    logits, features = _forward(model, cache, state, tokens, start, feature_layers, all_logits=False)
    state.prefilled += len(chunk)
    if state.prefilled < state.prompt_len:
        return Step(None, features)
    # The last prompt position's logits give the first output token.
    [sampled] = sample_batch(logits, [state.sampler])
    return Step(_one_token(state, sampled), features)


def prefill_batch(
    model: Transformer,
    cache: KVCache,
    batch: Sequence[RequestState],
    n_tokens: int,
    feature_layers: Sequence[int] | None,
) -> list[Step]:
    """The next ``n_tokens`` prompt tokens of every request of ``batch`` in one shared forward pass.

    Each row is one request's slot at its own position (as in ``decode``); a row whose
    prompt ends here samples its first output token. A row's own sampling failing ends
    that request alone (its Step carries the failure).
    """
    if len(batch) == 1:
        return [prefill_chunk(model, cache, batch[0], n_tokens, feature_layers)]
    starts = [s.prefilled for s in batch]
    tokens = torch.tensor(
        [
            s.request.prompt_token_ids[start : start + n_tokens]
            for s, start in zip(batch, starts, strict=True)
        ],
        dtype=torch.long,
    )
    logits, rows = _batch_forward(model, cache, batch, tokens, starts, feature_layers)
    result: list[Step] = []
    for state, row_logits, row in zip(batch, logits, rows, strict=True):
        state.prefilled += n_tokens
        if state.prefilled < state.prompt_len:
            result.append(Step(None, row))
        else:
            result.append(_own_step(state, row_logits, row))
    return result


def decode(
    model: Transformer,
    cache: KVCache,
    batch: Sequence[RequestState],
    feature_layers: Sequence[int] | None,
) -> list[Step]:
    """One token for every request of ``batch`` (past its prompt) in one shared forward pass.

    With ``feature_layers``, every row's step carries its features.
    """
    tokens = torch.tensor([[s.output[-1]] for s in batch], dtype=torch.long)
    starts = [s.prompt_len + len(s.output) - 1 for s in batch]
    logits, rows = _batch_forward(model, cache, batch, tokens, starts, feature_layers)
    samplers = [s.sampler for s in batch]
    if all(s.plain_argmax for s in samplers):
        chosen = sample_batch(logits, samplers)
        return [
            Step(_one_token(state, sampled), row)
            for state, sampled, row in zip(batch, chosen, rows, strict=True)
        ]
    # Each row's sampling and stop checks are its request's own: one that raises ends that
    # request alone (its Step carries the failure), and the other rows are unaffected.
    return [
        _own_step(state, row_logits, row) for state, row_logits, row in zip(batch, logits, rows, strict=True)
    ]


def _batch_forward(
    model: Transformer,
    cache: KVCache,
    batch: Sequence[RequestState],
    tokens: torch.Tensor,
    starts: Sequence[int],
    feature_layers: Sequence[int] | None,
) -> tuple[torch.Tensor, Sequence[torch.Tensor | None]]:
    """One shared pass, a row per request's slot: each row's last logits and (if asked) its features."""
    slots = [s.slot for s in batch]
    if feature_layers is None:
        return model(tokens, slots, starts, cache), [None] * len(batch)
    logits, features = model.forward_with_features(tokens, slots, starts, cache, feature_layers)
    return logits, list(features)


def _own_step(state: RequestState, logits: torch.Tensor, features: torch.Tensor | None) -> Step:
    try:
        return Step(_one_token(state, state.sampler.choose(logits)), features)
    except Exception as error:
        return Step(None, features, failure=error)


def verify(
    model: Transformer,
    cache: KVCache,
    state: RequestState,
    draft: Sequence[TokenId],
    feature_layers: Sequence[int] | None,
) -> Step:
    """One forward over ``[last token, *draft]`` in the request's slot; emits what it accepts."""
    tokens = torch.tensor([[state.output[-1], *draft]], dtype=torch.long)
    start = state.prompt_len + len(state.output) - 1
    batched_logits, features = _forward(model, cache, state, tokens, start, feature_layers, all_logits=True)
    return _accept(state, draft, batched_logits[0], features)


def verify_batch(
    model: Transformer,
    cache: KVCache,
    batch: Sequence[RequestState],
    drafts: Sequence[Sequence[TokenId]],
    feature_layers: Sequence[int] | None,
) -> list[Step]:
    """Every request's ``[last token, *draft]`` in one shared forward pass, a row per slot.

    Rows are as long as the longest draft: a shorter one is padded with copies of its
    last token, whose keys land past the row's accepted length, where rejected drafts
    go too (the next pass overwrites them, the causal mask never reads them) and whose
    logits are never looked at. Each row's acceptance is its own; one that raises ends
    that request alone.
    """
    width = max(len(d) for d in drafts) + 1
    rows = []
    for state, draft in zip(batch, drafts, strict=True):
        row = [state.output[-1], *draft]
        rows.append(row + [row[-1]] * (width - len(row)))
    starts = [s.prompt_len + len(s.output) - 1 for s in batch]
    tokens = torch.tensor(rows, dtype=torch.long)
    slots = [s.slot for s in batch]
    features: Sequence[torch.Tensor | None]
    if feature_layers is None:
        logits = model(tokens, slots, starts, cache, all_logits=True)
        features = [None] * len(batch)
    else:
        logits, stacked = model.forward_with_features(
            tokens, slots, starts, cache, feature_layers, all_logits=True
        )
        features = list(stacked)
    result: list[Step] = []
    for state, draft, row_logits, row_features in zip(batch, drafts, logits, features, strict=True):
        try:
            result.append(_accept(state, draft, row_logits[: len(draft) + 1], row_features))
        except Exception as error:
            result.append(Step(None, None, failure=error))
    return result


def _accept(
    state: RequestState, draft: Sequence[TokenId], logits: torch.Tensor, features: torch.Tensor | None
) -> Step:
    """Walk ``[last token, *draft]``'s logits ([k + 1, V]) in order: keep drafts while accepted."""
    progress = state.progress
    progress.decode_steps += 1
    progress.draft_tokens += len(draft)
    sampler = state.sampler
    # Plain argmax stays plain once it is (min_tokens only ever gets satisfied), so every
    # position's choice can come from one argmax over the rows.
    choices = torch.argmax(logits, dim=-1).tolist() if sampler.plain_argmax else None
    emitting = _Emitting(state)
    for position in range(len(draft) + 1):
        proposed = draft[position] if position < len(draft) else None
        if choices is not None:
            sampled = SampledToken(TokenId(choices[position]), None)
            accepted = sampled.token_id == proposed
        elif proposed is None:
            sampled, accepted = sampler.choose(logits[position]), False
        else:
            sampled, accepted = sampler.verify(logits[position], proposed)
        emitted_before = len(emitting.tokens)
        emitting.add(sampled)
        if accepted and len(emitting.tokens) > emitted_before:
            # A draft that is a stop token or end-of-sequence ends the request unoutput:
            # it is not counted, so that output == accepted + steps (less one for the stop).
            progress.accepted_draft_tokens += 1
        if emitting.reason is not None or not accepted:
            break
    if features is not None:
        # The last token and the accepted drafts were computed on the right prefix.
        features = features[: len(emitting.tokens)]
    return Step(emitting.done(), features)


def _forward(
    model: Transformer,
    cache: KVCache,
    state: RequestState,
    tokens: torch.Tensor,
    start: int,
    feature_layers: Sequence[int] | None,
    *,
    all_logits: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One request's own forward pass; with ``feature_layers`` also its features ``[T, 3 dim]``."""
    if feature_layers is None:
        return model(tokens, [state.slot], [start], cache, all_logits=all_logits), None
    logits, features = model.forward_with_features(
        tokens, [state.slot], [start], cache, feature_layers, all_logits=all_logits
    )
    return logits, features[0]


def _one_token(state: RequestState, sampled: SampledToken) -> Emitted:
    """A one-token step's result."""
    state.progress.decode_steps += 1
    emitting = _Emitting(state)
    emitting.add(sampled)
    return emitting.done()


class _Emitting:
    """One step's ``Emitted`` while its tokens are being chosen."""

    __slots__ = ("_state", "logprobs", "reason", "stop_token", "tokens")

    def __init__(self, state: RequestState) -> None:
        self._state = state
        self.tokens: list[TokenId] = []
        self.logprobs: list[TokenLogprob] = []
        self.reason: FinishReason | None = None
        self.stop_token: TokenId | None = None

    def add(self, sampled: SampledToken) -> None:
        """Emit one chosen token and let the request see it, unless it ends the request (stop checks)."""
        token = sampled.token_id
        state = self._state
        if token in state.eos:
            self.reason = FinishReason.END_OF_SEQUENCE
            return
        if token in state.request.stopping.stop_token_ids:
            self.reason, self.stop_token = FinishReason.STOP_TOKEN, token
            return
        constraint = state.sampler.constraint
        if constraint is not None and token in constraint.eos:
            # Only allowed once the format is complete (with ignore_eos too): the end, not output.
            self.reason = FinishReason.STRUCTURED_OUTPUT_COMPLETE
            return
        self.tokens.append(token)
        if sampled.logprob is not None:
            self.logprobs.append(sampled.logprob)
        state.output.append(token)
        state.sampler.observe(token)
        if state.sampler.complete:
            self.reason = FinishReason.STRUCTURED_OUTPUT_COMPLETE
        elif len(state.output) >= state.limit:
            self.reason = FinishReason.LENGTH

    def done(self) -> Emitted:
        return Emitted(tuple(self.tokens), tuple(self.logprobs), self.reason, self.stop_token)
