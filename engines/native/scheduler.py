"""In-flight batching on one dedicated worker thread.

Each iteration: drop cancelled requests, admit waiting ones into free KV-cache
slots, run prefill chunks (a token budget per iteration, so one long prompt
never stalls the running requests for long), run one decode step for every
request past its prompt, sample, check stop conditions, free finished slots,
and only then publish the iteration's outputs in one call.

Speculative decoding (draft, then verify). Two drafters behind
``speculation.Drafter``: prompt lookup (``drafting``) and the EAGLE-3 head
(``eagle3.drafting``). A request that speculates
and whose drafter proposes something this iteration is verified in a forward pass of its
own: its slot alone (B=1) over ``[last token, d1 .. dk]`` (T=k+1), which
costs far less than k+1 one-token steps (measured here: T=2 about 1.4x and
T=5 about 1.9x a one-token step). Every other decoding request
(speculation off, or no draft this time) takes one token in the shared batched
step as before. Batching the verifications with each other, or with the plain
rows, would pad every row to the longest draft; on a CPU the padded positions
are paid for in full, so the separate pass is the rule.

Verification walks the k+1 positions in order, each through the request's own
logits processing as it stands after the tokens before it (penalties, the
min_tokens ban and the RNG all see exactly the history the token would have
had without speculation): a draft is accepted (greedy: it is the argmax;
sampled: rejection sampling, see ``RequestSampler.verify``) or replaced by the
target's own token, which ends the step; when all k are accepted, the last
position gives a bonus token. A stop token, end-of-sequence or max_tokens in
the run ends the request there and the rest is dropped. All tokens of the step
reach the consumer as one output. Rejected drafts left keys and values in the
slot beyond the accepted length; positions are derived from the accepted
length, so the next forward overwrites them and the causal mask never reads
them: rolling back is free.

Speculation is for a lone decoding request (``speculate_max_decoding``): as
soon as more decode together, all of them take the shared batched step, which
yields more tokens per second in total on this CPU than one verification pass
per request. EAGLE-3 requests that speculate take their own pass even when the
head drafted nothing (it stops at the first token it is not confident of).
Every pass that runs a request whose drafter reads the target's features (EAGLE-3),
batched or not, also returns them and hands them to the drafter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
import torch

from engines.contract import (
    EngineError,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    FinishReason,
    RequestId,
    SpeculationMethod,
    SpeculationParams,
    TokenId,
    TokenLogprob,
)
from engines.delivery import Update
from engines.native import speculation
from engines.native.drafting import PromptLookup
from engines.native.eagle3.drafting import Eagle3Drafting
from engines.native.eagle3.head import Eagle3Drafter
from engines.native.kv_cache import KVCache, SlotAllocator
from engines.native.model import Transformer
from engines.native.request_state import RequestState
from engines.native.sampling import SampledToken, sample_batch
from engines.native.speculation import Drafter
from engines.request_table import RequestTable

_log = structlog.get_logger(__name__)

NO_SPECULATION = SpeculationParams(SpeculationMethod.OFF, 0)

Publish = Callable[[Sequence[Update]], None]
"""Receives every output of one iteration at once, on the worker thread; must not block."""


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Limits of the batching loop."""

    max_batch_size: int
    """KV-cache slots: requests prefilling or decoding at once."""
    max_waiting: int
    """Requests that may queue for a slot before ``submit`` raises ``EngineOverloaded``."""
    context_length: int
    """Prompt plus output tokens per request (the cache's positions per slot)."""
    prefill_chunk_tokens: int = 256
    """Prompt tokens processed per iteration, shared by all prefilling requests."""
    threads: int | None = None
    """``torch.set_num_threads`` for the worker; None keeps torch's default."""
    speculation: SpeculationParams = NO_SPECULATION
    """For requests that do not choose: how they speculate."""
    speculate_max_decoding: int = 1
    """Requests speculate only while at most this many are decoding; beyond that every request
    takes the shared batched step. Speculation trades compute for latency: here one batched step
    of 2 rows costs far less than two verification passes, so a lone request is where it pays."""


@dataclass(slots=True)
class _StepResult:
    """The tokens one target step emits for a request, and whether they ended it."""

    tokens: list[TokenId] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    reason: FinishReason | None = None
    stop_token: TokenId | None = None


class Scheduler:
    """Owns the model, the KV cache and the worker thread that steps them."""

    def __init__(
        self,
        model: Transformer,
        cache: KVCache,
        *,
        eos_token_ids: frozenset[TokenId],
        vocab_size: int,
        config: SchedulerConfig,
        publish: Publish,
        eagle3: Eagle3Drafter | None = None,
    ) -> None:
        self._model = model
        self._lookup = PromptLookup()
        self._eagle3 = Eagle3Drafting(eagle3) if eagle3 is not None else None
        self._cache = cache
        self._eos = eos_token_ids
        self._vocab_size = vocab_size
        self._config = config
        self._publish = publish
        self._slots = SlotAllocator(config.max_batch_size)
        self._cond = threading.Condition()
        # Guarded by _cond: the inbox the worker drains each iteration, and the books. Only the
        # worker changes which requests are active.
        self._cancelled: set[RequestId] = set()
        self._table: RequestTable[RequestState] = RequestTable(
            max_batch_size=config.max_batch_size,
            max_waiting=config.max_waiting,
            on_release=self._release,
        )

    def stop(self) -> None:
        """Ask ``run`` to end every request as CANCELLED and return. Never blocks long."""
        with self._cond:
            self._table.close()
            self._cond.notify()

    def submit(self, request: EngineRequest) -> None:
        """Queue ``request``; raises ``EngineOverloaded`` when the queue is full. Never blocks long."""
        sequence = RequestState.submitted(
            request,
            eos_token_ids=self._eos,
            vocab_size=self._vocab_size,
            context_length=self._config.context_length,
            speculation=self._config.speculation,
            now=time.monotonic(),
        )
        with self._cond:
            self._table.enqueue(sequence)
            self._cond.notify()

    def cancel(self, request_id: RequestId) -> None:
        """Ask the worker to drop ``request_id`` at its next iteration; unknown ids are ignored."""
        with self._cond:
            self._cancelled.add(request_id)
            self._cond.notify()

    def load(self) -> EngineLoad:
        """Requests holding slots and requests waiting for one."""
        with self._cond:
            return self._table.load()

    # Everything below runs on the worker thread.

    def run(self) -> None:
        """The batching loop; call it on the dedicated worker thread. Returns after ``stop``."""
        if self._config.threads is not None:
            torch.set_num_threads(self._config.threads)
        with torch.inference_mode():
            while True:
                updates: list[Update] = []
                with self._cond:
                    while not (self._table.closed or self._cancelled or not self._table.empty):
                        self._cond.wait()
                    if self._table.closed:
                        break
                    self._drop_cancelled(updates)
                    self._admit(updates)
                try:
                    self._step(updates)
                except Exception as error:
                    _log.exception("native_engine_step_failed")
                    self._fail_active(updates, EngineError(f"inference failed: {error}"))
                if updates:
                    self._publish(updates)
            self._cancel_everything()

    def _drop_cancelled(self, updates: list[Update]) -> None:
        """Under the lock: end cancelled requests and free their slots at once."""
        now = time.monotonic()
        cancelled, self._cancelled = self._cancelled, set()
        for request_id in cancelled:
            update = self._table.cancel(request_id, now)
            if update is not None:
                updates.append(update)

    def _admit(self, updates: list[Update]) -> None:
        """Under the lock: give free slots to waiting requests, oldest first."""
        # A request that may generate nothing finishes without touching the model.
        admitted, ended = self._table.admit(time.monotonic(), lambda s: s.limit > 0)
        for sequence in admitted:
            sequence.slot = self._slots.take()
        updates.extend(ended)

    def _release(self, sequence: RequestState) -> None:
        """Under the lock, on the worker thread: ``sequence`` left the batch."""
        self._slots.give_back(sequence.slot)
        self._lookup.forget(sequence.request_id)
        if self._eagle3 is not None:
            self._eagle3.forget(sequence.request_id)

    def _step(self, updates: list[Update]) -> None:
        """Prefill chunks, then one decode step (or one verification) for everything past its prompt."""
        # Only the worker changes the active requests, so reading them without the lock is safe here.
        running = sorted(self._table.active.values(), key=lambda s: s.slot)
        decoding = [s for s in running if s.prefilled == s.prompt_len]
        prefilling = sorted(
            (s for s in running if s.prefilled < s.prompt_len), key=lambda s: s.progress.submitted_at
        )
        budget = self._config.prefill_chunk_tokens
        for sequence in prefilling:
            if budget <= 0:
                break
            budget -= self._prefill_chunk(sequence, budget, updates)
        plain: list[RequestState] = []
        speculate = len(decoding) <= self._config.speculate_max_decoding
        for sequence in decoding:
            drafter = self._drafter(sequence)
            draft = speculation.draft(sequence, drafter) if speculate and drafter is not None else None
            if draft is None:
                plain.append(sequence)
            else:
                self._verify(sequence, draft, updates)
        if plain:
            self._decode(plain, updates)

    def _drafter(self, sequence: RequestState) -> Drafter | None:
        return speculation.drafter_for(sequence.speculation.method, lookup=self._lookup, eagle3=self._eagle3)

    def _feature_layers(self, sequence: RequestState) -> tuple[int, int, int] | None:
        drafter = self._drafter(sequence)
        return drafter.feature_layers if drafter is not None else None

    def _observe(self, sequence: RequestState, features: torch.Tensor) -> None:
        drafter = self._drafter(sequence)
        if drafter is not None:
            drafter.observe(sequence, features)

    def _forward(
        self, sequence: RequestState, tokens: torch.Tensor, start: int, *, all_logits: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One request's own forward pass; with EAGLE-3 also the head's features ``[T, 3 dim]``."""
        layers = self._feature_layers(sequence)
        if layers is None:
            return self._model(tokens, [sequence.slot], [start], self._cache, all_logits=all_logits), None
        logits, features = self._model.forward_with_features(
            tokens, [sequence.slot], [start], self._cache, layers, all_logits=all_logits
        )
        return logits, features[0]

    def _verify(self, sequence: RequestState, draft: tuple[TokenId, ...], updates: list[Update]) -> None:
        """One forward over ``[last token, *draft]`` in the request's slot; emit what it accepts."""
        tokens = torch.tensor([[sequence.output[-1], *draft]], dtype=torch.long)
        start = sequence.prompt_len + len(sequence.output) - 1
        batched_logits, features = self._forward(sequence, tokens, start, all_logits=True)
        logits = batched_logits[0]
        sequence.progress.decode_steps += 1
        sequence.progress.draft_tokens += len(draft)
        sampler = sequence.sampler
        # Plain argmax stays plain once it is (min_tokens only ever gets satisfied), so every
        # position's choice can come from one argmax over the rows.
        choices = torch.argmax(logits, dim=-1).tolist() if sampler.plain_argmax else None
        result = _StepResult()
        for position in range(len(draft) + 1):
            proposed = draft[position] if position < len(draft) else None
            if choices is not None:
                sampled = SampledToken(TokenId(choices[position]), None)
                accepted = sampled.token_id == proposed
            elif proposed is None:
                sampled, accepted = sampler.choose(logits[position]), False
            else:
                sampled, accepted = sampler.verify(logits[position], proposed)
            emitted_before = len(result.tokens)
            self._apply(sequence, sampled, result)
            if accepted and len(result.tokens) > emitted_before:
                # A draft that is a stop token or end-of-sequence ends the request unoutput:
                # it is not counted, so that output == accepted + steps (less one for the stop).
                sequence.progress.accepted_draft_tokens += 1
            if result.reason is not None or not accepted:
                break
        if features is not None:
            # The last token and the accepted drafts were computed on the right prefix.
            self._observe(sequence, features[: len(result.tokens)])
        self._finish_step(sequence, result, updates)

    def _prefill_chunk(self, sequence: RequestState, budget: int, updates: list[Update]) -> int:
        if sequence.progress.started_at is None:
            sequence.progress.started_at = time.monotonic()
        start = sequence.prefilled
        chunk = sequence.request.prompt_token_ids[start : start + budget]
        tokens = torch.tensor([chunk], dtype=torch.long)
        logits, features = self._forward(sequence, tokens, start, all_logits=False)
        if features is not None:
            self._observe(sequence, features)
        sequence.prefilled += len(chunk)
        if sequence.prefilled == sequence.prompt_len:
            # The last prompt position's logits give the first output token.
            [sampled] = sample_batch(logits, [sequence.sampler])
            self._accept(sequence, sampled, updates)
        return len(chunk)

    def _decode(self, batch: list[RequestState], updates: list[Update]) -> None:
        tokens = torch.tensor([[s.output[-1]] for s in batch], dtype=torch.long)
        starts = [s.prompt_len + len(s.output) - 1 for s in batch]
        slots = [s.slot for s in batch]
        layers = next((r for r in map(self._feature_layers, batch) if r is not None), None)
        if layers is not None:
            # Drafters that read features need them of the shared step too, for later drafts.
            logits, features = self._model.forward_with_features(tokens, slots, starts, self._cache, layers)
            for row, sequence in enumerate(batch):
                if self._feature_layers(sequence) is not None:
                    self._observe(sequence, features[row])
        else:
            logits = self._model(tokens, slots, starts, self._cache)
        for sequence, sampled in zip(batch, sample_batch(logits, [s.sampler for s in batch]), strict=True):
            self._accept(sequence, sampled, updates)

    def _accept(self, sequence: RequestState, sampled: SampledToken, updates: list[Update]) -> None:
        """A one-token step: apply the sampled token, then an output for this step."""
        sequence.progress.decode_steps += 1
        result = _StepResult()
        self._apply(sequence, sampled, result)
        self._finish_step(sequence, result, updates)

    def _apply(self, sequence: RequestState, sampled: SampledToken, result: _StepResult) -> None:
        """Append one chosen token to the step's result, unless it ends the request (stop checks)."""
        token = sampled.token_id
        stopping = sequence.request.stopping
        if token in sequence.eos:
            result.reason = FinishReason.END_OF_SEQUENCE
            return
        if token in stopping.stop_token_ids:
            result.reason, result.stop_token = FinishReason.STOP_TOKEN, token
            return
        result.tokens.append(token)
        if sampled.logprob is not None:
            result.logprobs.append(sampled.logprob)
        sequence.output.append(token)
        sequence.sampler.observe(token)
        if len(sequence.output) >= sequence.limit:
            result.reason = FinishReason.LENGTH

    def _finish_step(self, sequence: RequestState, result: _StepResult, updates: list[Update]) -> None:
        """Publish one step's tokens as one output; release the slot if the request ended."""
        request_id = sequence.request.request_id
        emitted = tuple(result.tokens)
        logprobs = tuple(result.logprobs)
        if result.reason is None:
            updates.append((request_id, EngineOutput(token_ids=emitted, logprobs=logprobs)))
            return
        now = time.monotonic()
        with self._cond:
            self._table.release(sequence, now)
        output = EngineOutput(
            token_ids=emitted,
            logprobs=logprobs,
            finish_reason=result.reason,
            stop_token_id=result.stop_token,
            stats=sequence.progress.stats(now),
        )
        updates.append((request_id, output))

    def _fail_active(self, updates: list[Update], error: EngineError) -> None:
        with self._cond:
            updates.extend(self._table.fail_active(error, time.monotonic()))

    def _cancel_everything(self) -> None:
        with self._cond:
            updates = self._table.cancel_all(time.monotonic())
        if updates:
            self._publish(updates)
