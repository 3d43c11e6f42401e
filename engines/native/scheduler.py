"""In-flight batching on one dedicated worker thread.

Each iteration: drop cancelled requests, admit waiting ones into free KV-cache
slots, run prefill chunks (a token budget per iteration, so one long prompt
never stalls the running requests for long), run one decode step for every
request past its prompt (the step functions of ``steps`` sample and check stop
conditions), free finished slots, and only then publish the iteration's outputs
in one call. The scheduler owns only the thread, the queue, admission and the
lock; the books are a ``RequestTable``, the forward passes are ``steps``, and
each drafter keeps its own per-request state.

Speculative decoding (draft, then verify). Two drafters behind
``speculation.Drafter``: prompt lookup (``drafting``) and the EAGLE-3 head
(``eagle3.drafting``). A request that speculates and whose drafter proposes
something this iteration is verified (``steps.verify``) in a forward pass of
its own: its slot alone (B=1) over ``[last token, d1 .. dk]`` (T=k+1), which
costs far less than k+1 one-token steps (measured here: T=2 about 1.4x and T=5
about 1.9x a one-token step). Every other decoding request (speculation off, or
no draft this time) takes one token in the shared batched step as before.
Batching the verifications with each other, or with the plain rows, would pad
every row to the longest draft; on a CPU the padded positions are paid for in
full, so the separate pass is the rule.

Speculation is for a lone decoding request by default (``speculate_max_decoding``):
as soon as more decode together, all of them take the shared batched step, which
yields more tokens per second in total on this CPU than verifying their drafts.
With a higher limit, the drafts of the requests decoding together are verified
in one shared pass (``steps.verify_batch``, rows padded to the longest draft):
measured at 4 streams with today's head (~1.4 tokens per step) that gives about
half the plain step's tokens/s (docs/benchmarks.md), hence the default.
EAGLE-3 requests that speculate are verified even when the head drafted nothing
(it stops at the first token it is not confident of).
Every pass that runs a request whose drafter reads the target's features
(EAGLE-3), batched or not, also computes them, and the scheduler hands them to
that drafter.

Prefix caching (``prefix_cache``): before a request's first prompt chunk, the
longest cached beginning of its prompt (whole blocks, at least one prompt token
left to run for the first output's logits) is copied into its slot and counts
as prefilled; an EAGLE-3 request reuses only blocks cached with their features,
which go to its drafter as if its own prefill had computed them. After every
step the blocks of its prompt and output whose keys became final enter the
cache (with their features, for EAGLE-3), so the next turn of a conversation
finds the answer too.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
import torch

from engines.contract import (
    EngineError,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    RequestId,
    SpeculationMethod,
    SpeculationParams,
    TokenId,
)
from engines.delivery import Update
from engines.native import speculation, steps
from engines.native.drafting import PromptLookup
from engines.native.eagle3.drafting import Eagle3Drafting
from engines.native.eagle3.head import Eagle3Drafter
from engines.native.kv_cache import KVCache, SlotAllocator
from engines.native.model import Transformer
from engines.native.prefix_cache import PrefixCache
from engines.native.request_state import RequestState
from engines.native.speculation import Drafter
from engines.request_table import RequestTable
from engines.structured import Grammars

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
    kv_budget_positions: int | None = None
    """KV-cache positions the active requests may reserve together; None: no limit beyond slots."""
    speculation: SpeculationParams = NO_SPECULATION
    """For requests that do not choose: how they speculate."""
    batched_prefill: bool = False
    """Prompts waiting together share one forward pass per iteration (the budget split evenly);
    False: the oldest prompt takes the budget first, each prompt its own pass (the default: on a
    CPU the shared pass saves little and delays the first prompts' first tokens)."""
    speculate_max_decoding: int = 1
    """Requests speculate only while at most this many are decoding; beyond that every request
    takes the shared batched step. Speculation trades compute for latency: here one batched step
    of 2 rows costs far less than two verification passes, so a lone request is where it pays."""


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
        prefix_cache: PrefixCache | None = None,
        grammars: Grammars | None = None,
    ) -> None:
        self._model = model
        self._grammars = grammars
        self._cache = cache
        self._prefix = prefix_cache
        self._eos = eos_token_ids
        self._vocab_size = vocab_size
        self._config = config
        self._publish = publish
        self._lookup = PromptLookup()
        self._eagle3 = Eagle3Drafting(eagle3) if eagle3 is not None else None
        self._slots = SlotAllocator(
            config.max_batch_size, config.kv_budget_positions, page_positions=cache.page_positions
        )
        self._cond = threading.Condition()
        # Guarded by _cond: the inbox the worker drains each iteration, and the books. Only the
        # worker changes which requests are active.
        self._cancelled: set[RequestId] = set()
        self._table: RequestTable[RequestState] = RequestTable(
            max_batch_size=config.max_batch_size, max_waiting=config.max_waiting, on_release=self._released
        )

    def stop(self) -> None:
        """Ask ``run`` to end every request as CANCELLED and return. Never blocks long."""
        with self._cond:
            self._table.close()
            self._cond.notify()

    def submit(self, request: EngineRequest) -> None:
        """Queue ``request``; raises ``EngineOverloaded`` when the queue is full. Never blocks long."""
        state = RequestState.submitted(
            request,
            eos_token_ids=self._eos,
            vocab_size=self._vocab_size,
            context_length=self._config.context_length,
            speculation=self._config.speculation,
            now=time.monotonic(),
            grammars=self._grammars,
        )
        with self._cond:
            self._table.enqueue(state)
            self._cond.notify()

    def cancel(self, request_id: RequestId) -> None:
        """Ask the worker to drop ``request_id`` at its next iteration; unknown ids are ignored."""
        with self._cond:
            self._cancelled.add(request_id)
            self._cond.notify()

    def load(self) -> EngineLoad:
        """Requests holding slots and requests waiting for one, and the KV memory they reserve."""
        per_position = self._cache.position_bytes()
        budget = self._slots.budget_positions
        capacity = budget if budget is not None else self._config.max_batch_size * self._cache.max_seq
        with self._cond:
            load = self._table.load()
        return dataclasses.replace(
            load,
            kv_cache_bytes_used=self._slots.reserved_positions * per_position,
            kv_cache_bytes_capacity=capacity * per_position,
        )

    # Everything below runs on the worker thread.

    def run(self) -> None:
        """The batching loop; call it on the dedicated worker thread. Returns after ``stop``."""
        if self._config.threads is not None:
            torch.set_num_threads(self._config.threads)
        table = self._table
        with torch.inference_mode():
            while True:
                updates: list[Update] = []
                with self._cond:
                    while not (table.closed or self._cancelled or not table.empty):
                        self._cond.wait()
                    if table.closed:
                        break
                    self._drop_cancelled(updates)
                    self._admit(updates)
                try:
                    self._step(updates)
                except Exception as error:
                    _log.exception("native_engine_step_failed")
                    failure = EngineError(f"inference failed: {error}")
                    with self._cond:
                        updates.extend(table.fail_active(failure, time.monotonic()))
                if updates:
                    self._publish(updates)
            with self._cond:
                ended = table.cancel_all(time.monotonic())
            if ended:
                self._publish(ended)

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
        # A request that may generate nothing finishes without touching the model; one whose
        # positions do not fit the KV cache's budget yet waits, and so does everything after it.
        _, ended = self._table.admit(time.monotonic(), lambda s: s.limit > 0, self._take_slot)
        updates.extend(ended)

    def _take_slot(self, state: RequestState) -> bool:
        """Under the lock: reserve a slot for the most positions ``state`` can reach, if they fit."""
        slot = self._slots.take(state.prompt_len + state.limit)
        if slot is None:
            return False
        state.slot = slot
        return True

    def _released(self, state: RequestState) -> None:
        """Under the lock: ``state`` left the batch; free its slot and its drafters' state."""
        self._cache.release(state.slot)
        self._slots.give_back(state.slot)
        self._lookup.forget(state.request_id)
        if self._eagle3 is not None:
            self._eagle3.forget(state.request_id)

    def _step(self, updates: list[Update]) -> None:
        """Prefill chunks, then one decode step (or one verification) for everything past its prompt.

        Appends as it goes, so that when a pass fails, outputs of the steps before it still go out.
        A failure that is one request's own (its prompt chunk, its draft or verification pass, its
        sampling or stop checks, its drafter) ends that request alone. When the shared decode pass
        fails, each of its requests is retried alone, and only those that fail alone are ended.
        """
        model, cache = self._model, self._cache
        # Only the worker changes the active requests, so reading them without the lock is safe here.
        running = sorted(self._table.active.values(), key=lambda s: s.slot)
        decoding = [s for s in running if s.prefilled == s.prompt_len]
        prefilling = sorted(
            (s for s in running if s.prefilled < s.prompt_len), key=lambda s: s.progress.submitted_at
        )
        for n_tokens, group in self._prefill_plan(prefilling, updates):
            layers = next((f for f in map(self._feature_layers, group) if f is not None), None)
            try:
                done = steps.prefill_batch(model, cache, group, n_tokens, layers)
            except Exception as error:
                if len(group) == 1:
                    self._fail(group[0], error, updates)
                    continue
                _log.exception("native_shared_prefill_failed", requests=len(group))
                done = self._prefill_alone(group, n_tokens, layers)
            for state, step in zip(group, done, strict=True):
                self._take(state, step, updates)
        plain: list[RequestState] = []
        speculate = len(decoding) <= self._config.speculate_max_decoding
        verifying: list[tuple[RequestState, tuple[TokenId, ...]]] = []
        for state in decoding:
            try:
                drafter = self._drafter(state) if speculate else None
                draft = speculation.draft(state, drafter) if drafter is not None else None
            except Exception as error:
                self._fail(state, error, updates)
                continue
            if drafter is None or draft is None:
                plain.append(state)
            else:
                verifying.append((state, draft))
        self._verify(verifying, updates)
        if plain:
            # Drafters that read features need them of the shared step too, for later drafts.
            layers = next((f for f in map(self._feature_layers, plain) if f is not None), None)
            try:
                shared = list(zip(plain, steps.decode(model, cache, plain, layers), strict=True))
            except Exception:
                _log.exception("native_shared_step_failed", requests=len(plain))
                shared = self._decode_alone(plain, layers, updates)
            for state, step in shared:
                self._take(state, step, updates)

    def _reuse_prefix(self, state: RequestState) -> None:
        """Before the first prompt chunk: copy the longest cached beginning of the prompt into the slot."""
        state.cache_checked = True
        prefix = self._prefix
        if prefix is None:
            return
        layers = self._feature_layers(state)
        if layers is not None and prefix.feature_dim:
            state.feature_tail = []
        # At least the prompt's last token runs through the model: its logits give the first output.
        hit = prefix.lookup(
            state.request.prompt_token_ids,
            max_positions=state.prompt_len - 1,
            need_features=layers is not None,
        )
        if not hit.blocks:
            return
        features = prefix.load(hit, self._cache, state.slot)
        state.prefilled = state.stored = hit.tokens
        state.stored_key = hit.blocks[-1].key
        state.progress.cached_prompt_tokens = hit.tokens
        if layers is not None:
            assert features is not None, "an EAGLE-3 hit carries its features"
            drafter = self._drafter(state)
            assert drafter is not None
            drafter.observe(state, features)

    def _store_final_blocks(self, state: RequestState) -> None:
        """Offer the blocks whose keys and values just became final to the prefix cache."""
        prefix = self._prefix
        if prefix is None:
            return
        # Prompt positions are final once prefilled; the newest output token has no keys yet.
        final = (
            state.prefilled
            if state.prefilled < state.prompt_len
            else state.prompt_len + len(state.output) - 1
        )
        aligned = final // prefix.block_tokens * prefix.block_tokens
        if aligned <= state.stored:
            return
        tail = state.feature_tail
        features = (torch.cat(tail) if len(tail) > 1 else tail[0]) if tail else None
        try:
            reached, key = prefix.extend(
                state.tokens[:aligned],
                self._cache,
                state.slot,
                start=state.stored,
                parent=state.stored_key,
                features=features,
            )
        except Exception:  # the cache is an optimisation: a request never fails for it
            _log.exception("prefix_cache_disabled", request_id=state.request_id)
            self._prefix = None  # a cache that failed once is not trusted again
            return
        if key is None and state.stored > 0:
            # Its chain's last block was evicted: nothing after it can be found again.
            state.stored, state.feature_tail = sys.maxsize, None
            return
        if features is not None and tail is not None:
            tail[:] = [features[reached - state.stored :]]
        state.stored, state.stored_key = reached, key

    def _verify(
        self, verifying: Sequence[tuple[RequestState, tuple[TokenId, ...]]], updates: list[Update]
    ) -> None:
        """Verify the drafts: several in one shared pass (rows padded to the longest draft), or one alone.

        A row that would run past its slot's positions, or a shared pass that fails, is
        verified alone; a request whose own pass fails ends alone.
        """
        width = max((len(draft) for _, draft in verifying), default=0) + 1
        room = [s.prompt_len + len(s.output) - 1 + width <= self._cache.max_seq for s, _ in verifying]
        fits = [pair for pair, ok in zip(verifying, room, strict=True) if ok]
        alone = [pair for pair, ok in zip(verifying, room, strict=True) if not ok]
        if len(fits) == 1:
            alone, fits = list(verifying), []
        if fits:
            group = [s for s, _ in fits]
            layers = next((f for f in map(self._feature_layers, group) if f is not None), None)
            try:
                done = steps.verify_batch(self._model, self._cache, group, [d for _, d in fits], layers)
            except Exception:
                _log.exception("native_shared_verification_failed", requests=len(group))
                alone = list(verifying)
            else:
                for state, step in zip(group, done, strict=True):
                    self._take(state, step, updates)
        for state, draft in alone:
            try:
                step = steps.verify(self._model, self._cache, state, draft, self._feature_layers(state))
            except Exception as error:
                self._fail(state, error, updates)
                continue
            self._take(state, step, updates)

    def _prefill_plan(
        self, prefilling: Sequence[RequestState], updates: list[Update]
    ) -> list[tuple[int, list[RequestState]]]:
        """This iteration's prompt chunks, as (tokens per row, requests) groups of one forward pass each.

        The token budget is shared: ``fcfs`` gives it to the oldest prompts first, one
        pass each; ``batched`` splits it evenly (whole blocks of 16) among the waiting
        prompts and runs the rows of equal length together.
        """
        budget = self._config.prefill_chunk_tokens
        chosen: list[RequestState] = []
        for state in prefilling:
            if len(chosen) * 16 >= budget:
                break
            if state.progress.started_at is None:
                state.progress.started_at = time.monotonic()
            try:
                if not state.cache_checked:
                    self._reuse_prefix(state)
            except Exception as error:
                self._fail(state, error, updates)
                continue
            chosen.append(state)
        plan: dict[int, list[RequestState]] = {}
        if self._config.batched_prefill and len(chosen) > 1:
            share = max(16, budget // len(chosen) // 16 * 16)
            for state in chosen:
                plan.setdefault(min(share, state.prompt_len - state.prefilled), []).append(state)
            return sorted(plan.items(), key=lambda item: -item[0])
        groups: list[tuple[int, list[RequestState]]] = []
        for state in chosen:
            if budget <= 0:
                break
            n_tokens = min(budget, state.prompt_len - state.prefilled)
            budget -= n_tokens
            groups.append((n_tokens, [state]))
        return groups

    def _prefill_alone(
        self,
        group: Sequence[RequestState],
        n_tokens: int,
        layers: tuple[int, int, int] | None,
    ) -> list[steps.Step]:
        """The shared prompt pass failed: run each row alone (a failed pass advanced no request)."""
        done: list[steps.Step] = []
        for state in group:
            try:
                done.append(steps.prefill_chunk(self._model, self._cache, state, n_tokens, layers))
            except Exception as error:  # ends this request alone, when the caller takes its step
                done.append(steps.Step(None, failure=error))
        return done

    def _decode_alone(
        self, batch: Sequence[RequestState], layers: tuple[int, int, int] | None, updates: list[Update]
    ) -> list[tuple[RequestState, steps.Step]]:
        """The shared pass failed: run each request's step alone, ending those that fail alone.

        A failed pass changed no request's state (sampling comes after the forward), and a
        retry rewrites the same cache positions, so the retried requests lose nothing.
        """
        done: list[tuple[RequestState, steps.Step]] = []
        for state in batch:
            try:
                [step] = steps.decode(self._model, self._cache, [state], layers)
            except Exception as error:
                self._fail(state, error, updates)
                continue
            done.append((state, step))
        return done

    def _fail(self, state: RequestState, error: Exception, updates: list[Update]) -> None:
        """End ``state``'s request alone with an engine error; the batch goes on."""
        _log.error("native_request_failed", request_id=state.request_id, exc_info=error)
        with self._cond:
            update = self._table.fail(
                state, EngineError(f"inference failed: {_brief(error)}"), time.monotonic()
            )
        # Not active any more: this step released it before failing, so its end is not out yet.
        updates.append(update or (state.request_id, EngineError(f"inference failed: {_brief(error)}")))

    def _drafter(self, state: RequestState) -> Drafter | None:
        return speculation.drafter_for(state.speculation.method, lookup=self._lookup, eagle3=self._eagle3)

    def _feature_layers(self, state: RequestState) -> tuple[int, int, int] | None:
        drafter = self._drafter(state)
        return drafter.feature_layers if drafter is not None else None

    def _take(self, state: RequestState, step: steps.Step, updates: list[Update]) -> None:
        """Hand a step's features to the request's drafter and its tokens to the consumer as one
        output; release the request if they ended it. A failure here ends this request alone."""
        if step.failure is not None:
            self._fail(state, step.failure, updates)
            return
        try:
            self._take_step(state, step, updates)
        except Exception as error:
            self._fail(state, error, updates)

    def _take_step(self, state: RequestState, step: steps.Step, updates: list[Update]) -> None:
        drafter = self._drafter(state)
        if step.features is not None and drafter is not None:
            drafter.observe(state, step.features)
            if state.feature_tail is not None:
                state.feature_tail.append(step.features)
        self._store_final_blocks(state)
        emitted = step.emitted
        if emitted is None:
            return
        if emitted.reason is None:
            updates.append(
                (state.request_id, EngineOutput(token_ids=emitted.tokens, logprobs=emitted.logprobs))
            )
            return
        now = time.monotonic()
        with self._cond:
            self._table.release(state, now)
        output = EngineOutput(
            token_ids=emitted.tokens,
            logprobs=emitted.logprobs,
            finish_reason=emitted.reason,
            stop_token_id=emitted.stop_token,
            stats=state.progress.stats(now),
        )
        updates.append((state.request_id, output))


def _brief(error: Exception, limit: int = 200) -> str:
    """``error`` for a caller: its type and the start of its message (never unbounded)."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
