"""Per-request logits processing and sampling for one batch of rows.

Order per row: repetition penalty (HF) → presence/frequency penalties
(OpenAI) → logit bias → min_tokens ban → structured-output mask → temperature
→ [logprobs taken here] → top-k → top-p → min-p → draw (or argmax when greedy).

The structured-output mask comes from the request's own grammar matcher
(``Constraint``), advanced by every token the request keeps (``observe``), so
each position of a speculative verification sees the grammar state its token
would have had without speculation: a draft the grammar forbids has probability
0 there and is rejected, and the replacement is drawn under the mask. When the
bans (min_tokens, a bias of -100) leave nothing the grammar allows, the grammar
wins: its tokens are drawn without the bans, since the output must stay valid.

Numerics: every documented value must give a distribution, never inf or NaN.
Processing runs in float64 (a penalty of 1e-40 lifts a logit of 30 to 3e41,
far inside its range), and temperature divides ``logits - max(logits)``, so the
top token scales to 0 and the rest to at most 0: a temperature below float
precision makes every other token's probability underflow to exactly 0, and
the draw returns the top token (a tie for the top is drawn among the tied
tokens), the limit of sampling as the temperature goes to 0.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import llguidance
import torch

from engines.contract import EngineError, SamplingParams, TokenId, TokenLogprob, TopLogprob

# Engine defaults for fields a request leaves as None.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0


@dataclass(frozen=True, slots=True)
class SampledToken:
    """One row's choice, with its log-probability when the request asked for it."""

    token_id: TokenId
    logprob: TokenLogprob | None


BAN_BIAS = -100.0
"""A logit bias this low bans the token outright (-inf), as the API promises."""


class Constraint:
    """One request's structured-output state: its own llguidance matcher, made on first use (so on
    the worker thread, which also compiles it should the compiled grammar have left the cache)."""

    __slots__ = ("_make", "_matcher", "eos")

    def __init__(self, make: Callable[[], llguidance.LLMatcher], eos: frozenset[int]) -> None:
        self._make = make
        self._matcher: llguidance.LLMatcher | None = None
        self.eos = eos
        """The tokens by which the grammar says "complete" (the tokenizer's end-of-sequence ids):
        they end the request, never join its output, even with ``ignore_eos``."""

    def _get(self) -> llguidance.LLMatcher:
        if self._matcher is None:
            self._matcher = self._make()
        return self._matcher

    def forbidden(self, vocab: int) -> torch.Tensor:
        """Which of ``vocab`` tokens the grammar forbids next, as a bool tensor ``[vocab]``."""
        # One byte per token of the matcher's vocabulary: 0 (forbidden) or 200 (allowed).
        mask = torch.frombuffer(bytearray(self._get().compute_logit_bias()), dtype=torch.uint8) == 0
        if mask.shape[0] < vocab:  # model rows past the tokenizer's vocabulary are never allowed
            mask = torch.cat([mask, torch.ones(vocab - mask.shape[0], dtype=torch.bool)])
        return mask[:vocab]

    def allows(self, token_id: int) -> bool:
        """Whether the grammar allows ``token_id`` next (a few µs: no mask is built)."""
        return self._get().validate_tokens([token_id]) == 1

    def advance(self, token_id: int) -> None:
        """The request kept ``token_id``: move the grammar past it."""
        matcher = self._get()
        if not matcher.consume_token(token_id):
            raise EngineError(f"structured output: token {token_id} broke the grammar: {matcher.get_error()}")

    @property
    def complete(self) -> bool:
        """The grammar allows nothing more (only end-of-sequence)."""
        return self._get().is_stopped()


class RequestSampler:
    """Sampling state of one request: its parameters, RNG and the tokens it has seen."""

    def __init__(
        self,
        params: SamplingParams,
        *,
        prompt_token_ids: Sequence[int],
        vocab_size: int,
        banned_before_min_tokens: Iterable[int],
        min_tokens: int,
        logprobs: bool,
        top_logprobs: int,
        constraint: Constraint | None = None,
    ) -> None:
        self.temperature = DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
        self.top_p = DEFAULT_TOP_P if params.top_p is None else params.top_p
        self.top_k = params.top_k or 0
        self.min_p = params.min_p or 0.0
        self.repetition_penalty = params.repetition_penalty or 1.0
        self.presence_penalty = params.presence_penalty or 0.0
        self.frequency_penalty = params.frequency_penalty or 0.0
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs if logprobs else 0
        self.min_tokens = min_tokens
        self.generated = 0
        self._banned = torch.tensor(sorted(set(banned_before_min_tokens)), dtype=torch.long)
        # A seed-less request still gets its own generator, so no request's draws
        # depend on how many tokens its batch neighbours drew.
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        self.generator = torch.Generator().manual_seed(seed)
        self._seen: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        if self.repetition_penalty != 1.0:
            self._seen = torch.zeros(vocab_size, dtype=torch.bool)
            self._seen[torch.tensor(list(prompt_token_ids), dtype=torch.long)] = True
        if self.presence_penalty != 0.0 or self.frequency_penalty != 0.0:
            self._counts = torch.zeros(vocab_size, dtype=torch.float64)
        self._bias: torch.Tensor | None = None
        self._bias_bans: torch.Tensor | None = None
        if params.logit_bias:
            bias = torch.zeros(vocab_size, dtype=torch.float64)
            bans = [token for token, value in params.logit_bias if value <= BAN_BIAS]
            for token, value in params.logit_bias:
                if value > BAN_BIAS:
                    bias[token] = value
            self._bias = bias
            if bans:
                self._bias_bans = torch.tensor(sorted(bans), dtype=torch.long)
        self.constraint = constraint

    @property
    def greedy(self) -> bool:
        """Temperature 0: take the argmax of the penalized logits."""
        return self.temperature == 0.0

    @property
    def plain_argmax(self) -> bool:
        """Whether the choice is just the argmax of the raw logits (no processing, no logprobs)."""
        return (
            self.greedy
            and not self.logprobs
            and self._seen is None
            and self._counts is None
            and self._bias is None
            and self.constraint is None
            and self.generated >= self.min_tokens
        )

    @property
    def _argmax_suffices(self) -> bool:
        """Greedy with nothing but the grammar shaping the logits: the raw argmax is the choice
        whenever the grammar allows it, which is cheap to ask, so no mask need be built."""
        return (
            self.greedy
            and self.constraint is not None
            and not self.logprobs
            and self._seen is None
            and self._counts is None
            and self._bias is None
            and self.generated >= self.min_tokens
        )

    def _grammar_argmax(self, logits: torch.Tensor) -> TokenId | None:
        """The greedy choice without building the mask, when the raw argmax is allowed."""
        assert self.constraint is not None
        token = int(torch.argmax(logits).item())
        return TokenId(token) if self.constraint.allows(token) else None

    @property
    def complete(self) -> bool:
        """The request's structured output allows nothing more."""
        return self.constraint is not None and self.constraint.complete

    def observe(self, token_id: int) -> None:
        """Record a generated token (for penalties, min_tokens and the grammar)."""
        if self.constraint is not None:
            self.constraint.advance(token_id)
        self.generated += 1
        if self._seen is not None:
            self._seen[token_id] = True
        if self._counts is not None:
            self._counts[token_id] += 1.0

    def process(self, logits: torch.Tensor) -> torch.Tensor:
        """Penalties, min_tokens ban and temperature applied to one row's logits [V], as float64."""
        logits = logits.double()
        if self._seen is not None:
            penalty = self.repetition_penalty
            penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
            logits = torch.where(self._seen, penalized, logits)
        if self._counts is not None:
            logits = logits - self.frequency_penalty * self._counts
            logits = logits - self.presence_penalty * (self._counts > 0).float()
        if self._bias is not None:
            logits = logits + self._bias
        unbanned = logits
        if self._bias_bans is not None:
            logits = logits.index_fill(0, self._bias_bans, float("-inf"))
        if self.generated < self.min_tokens and self._banned.numel():
            logits = logits.index_fill(0, self._banned, float("-inf"))
        if self.constraint is not None:
            forbidden = self.constraint.forbidden(logits.shape[-1])
            masked = logits.masked_fill(forbidden, float("-inf"))
            banned = logits is not unbanned
            if banned and not bool(torch.isfinite(masked).any()):
                # The bans left nothing the grammar allows: the grammar wins.
                masked = unbanned.masked_fill(forbidden, float("-inf"))
            if bool(forbidden.all()):
                raise EngineError("structured output: the grammar allows no token here")
            logits = masked
        if not self.greedy and self.temperature != 1.0:
            logits = (logits - logits.max()) / self.temperature
        return logits

    def choose(self, logits: torch.Tensor) -> SampledToken:
        """Process one row's raw logits [V] and pick the next token."""
        if self._argmax_suffices and (quick := self._grammar_argmax(logits)) is not None:
            return SampledToken(quick, None)
        logits = self.process(logits.float())
        logprob: TokenLogprob | None = None
        if self.greedy:
            token = int(torch.argmax(logits).item())
        else:
            token = int(torch.multinomial(_truncated_probs(logits, self), 1, generator=self.generator).item())
        if self.logprobs:
            logprob = _logprob_of(logits, token, self.top_logprobs)
        return SampledToken(TokenId(token), logprob)

    def verify(self, logits: torch.Tensor, draft: int) -> tuple[SampledToken, bool]:
        """Judge a draft token against one row's raw logits [V]: the token to emit, and
        whether it is the draft.

        Greedy: the argmax, which accepts the draft exactly when the draft is the
        argmax (lossless). Sampled: speculative rejection sampling for a
        deterministic drafter (its proposal is one-hot, q(draft) = 1): accept with
        probability p(draft); otherwise draw from p with the draft's mass removed,
        renormalized. The emitted token is then distributed exactly as p, whatever
        the draft was.
        """
        if self._argmax_suffices and (quick := self._grammar_argmax(logits)) is not None:
            return SampledToken(quick, None), quick == draft
        logits = self.process(logits.float())
        if self.greedy:
            token = int(torch.argmax(logits).item())
        else:
            probs = _truncated_probs(logits, self)
            probs = probs / probs.sum()
            if accept_draft(probs, draft, self.generator):
                token = draft
            else:
                token = int(torch.multinomial(residual(probs, draft), 1, generator=self.generator).item())
        logprob = _logprob_of(logits, token, self.top_logprobs) if self.logprobs else None
        return SampledToken(TokenId(token), logprob), token == draft


def accept_draft(probs: torch.Tensor, draft: int, generator: torch.Generator) -> bool:
    """Accept a one-hot draft with probability ``probs[draft]`` (min(1, p/q) with q = 1)."""
    return float(torch.rand((), generator=generator).item()) < float(probs[draft].item())


def residual(probs: torch.Tensor, draft: int) -> torch.Tensor:
    """What to draw from after rejecting ``draft``: max(0, p - q) with q one-hot, i.e. p without it.

    Rejection is impossible when p(draft) = 1, so some mass always remains.
    """
    return probs.index_fill(0, torch.tensor([draft]), 0.0)


def _truncated_probs(logits: torch.Tensor, sampler: RequestSampler) -> torch.Tensor:
    """Probabilities after top-k, top-p and min-p truncation (unnormalized is fine for multinomial)."""
    vocab = logits.shape[-1]
    if 0 < sampler.top_k < vocab:
        kth = torch.topk(logits, sampler.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if sampler.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Drop a token when the tokens strictly more likely already cover top_p; the
        # most likely token always survives.
        drop_sorted = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) > sampler.top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    if sampler.min_p > 0.0:
        probs = probs.masked_fill(probs < sampler.min_p * probs.max(), 0.0)
    return probs


def _logprob_of(logits: torch.Tensor, token: int, top_n: int) -> TokenLogprob:
    logprobs = torch.log_softmax(logits, dim=-1)
    top: tuple[TopLogprob, ...] = ()
    if top_n > 0:
        values, indices = torch.topk(logprobs, min(top_n, logprobs.shape[-1]))
        top = tuple(
            TopLogprob(TokenId(int(i)), float(v))
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        )
    return TokenLogprob(TokenId(token), float(logprobs[token].item()), top)


def sample_batch(logits: torch.Tensor, samplers: Sequence[RequestSampler]) -> list[SampledToken]:
    """Choose the next token of every row of ``logits`` [B, V] with that row's sampler.

    Rows are handled one by one: each has its own parameters and generator, and
    B is small (the batch size), so the loop costs little next to the forward pass.
    """
    if len(samplers) != logits.shape[0]:
        raise ValueError("one sampler per row")
    if all(s.plain_argmax for s in samplers):
        # Common fast path: one argmax for the whole batch.
        return [SampledToken(TokenId(int(t)), None) for t in torch.argmax(logits, dim=-1).tolist()]
    return [sampler.choose(row) for sampler, row in zip(samplers, logits, strict=True)]
