"""``SimEngine``: the engine contract with no model behind it, paced like a fast production engine.

A load-testing tool, never the default. One worker thread steps every active
request together on a ``Pacer`` tick; each step emits the request's next
``step_sizes`` tokens of a fixed passage (real token ids of the embedded
model's tokenizer, so detokenization and stop handling above the engine do
their real work). A request is admitted at a tick, its prompt "costs" that
tick, and its first step lands on the next one.

State lives under one condition lock. Each tick's outputs are published while
it is held, and ``cancel`` publishes its CANCELLED output under it too, so no
token of a request is ever published after its final output.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass

import structlog

from engines.contract import (
    EngineError,
    EngineInfo,
    EngineLoad,
    EngineOutput,
    EngineRequest,
    FinishReason,
    InvalidStructuredOutput,
    RequestId,
    SpeculationMethod,
    SpeculativeConfig,
    StructuredOutput,
    TokenId,
    Tokenizer,
    TokenLogprob,
    TopLogprob,
)
from engines.delivery import OutputRouter, Update
from engines.request_table import Progress, RequestTable, open_stream
from engines.sim.config import SimEngineConfig, SimMode
from engines.sim.schedule import Pacer, PacingReport, start_offset, step_sizes

_log = structlog.get_logger(__name__)

MODEL_NAME = "SmolLM2-135M-Instruct (simulated timing)"

PASSAGE = (
    "The morning train to the coast leaves a little after six, and most of the people who take it "
    "have taken it for years. They know which carriages stay warm in winter and which windows open "
    "in summer. A retired teacher sits near the front with a crossword folded into quarters. Two "
    "nurses coming off a night shift share a flask of tea and say very little. A boy with a cello "
    "case wedges himself beside the door and watches the fields go by as if he has never seen them "
    "before.\n\n"
    "Outside, the land changes slowly. First come the allotments, with their sheds and water butts "
    "and rows of beans climbing canes. Then the river appears, wide and brown after the rain, with a "
    "heron standing very still at the edge of the reeds. Farther on, the hedges give way to low "
    "stone walls, and sheep move across the hills like patches of cloud that have come down to rest. "
    "Nobody on the train remarks on any of it, but nearly everyone looks.\n\n"
    "At the halfway station the guard steps down to help an old man with a bicycle. It takes a "
    "minute, perhaps two, and the timetable does not allow for it, yet no one complains. The teacher "
    "fills in another answer. One of the nurses has fallen asleep against the window, and her friend "
    "moves the flask so that it will not tip over when the train starts again.\n\n"
    "By the time the sea comes into view, the carriage is brighter and louder. Gulls wheel over the "
    "harbour wall, and the smell of salt and diesel drifts in through the open door. The boy lifts "
    "his cello and steps onto the platform first. The others follow at their own pace, into a day "
    "that has already begun without them, and the empty train waits a while before it turns around "
    "and carries its quiet back inland.\n\n"
)
"""What every request streams (from an offset given by its id), cycling, tokenized once at start."""


@dataclass(slots=True)
class _Sequence:
    """Worker-side state of one request (mutable; guarded by the engine's lock)."""

    request: EngineRequest
    progress: Progress
    steps: Iterator[int]
    position: int
    """Index in the passage of the next token."""
    limit: int
    """Most tokens it may emit: ``max_tokens``, or what is left of the context."""
    ends: frozenset[TokenId]
    """Tokens that end it once ``min_tokens`` are out: stop tokens, plus EOS unless ignored."""
    emitted: int = 0


class SimEngine:
    """Implements ``engines.contract.Engine`` with simulated timing and no model (load tests only)."""

    def __init__(self, config: SimEngineConfig | None = None, *, tokenizer: Tokenizer | None = None) -> None:
        """``tokenizer``: what gives the output ids; None: load the GGUF's own at ``start``."""
        self._config = config if config is not None else SimEngineConfig()
        self._given_tokenizer = tokenizer
        self._tokenizer: Tokenizer | None = None
        self._info: EngineInfo | None = None
        self._eos: frozenset[TokenId] = frozenset()
        self._passage_length = 0
        self._ring: tuple[TokenId, ...] = ()
        """The passage, extended so that any step's tokens are one slice."""
        self._draft_length = self._config.draft_length  # read for every request at every step
        self._router = OutputRouter(self._config.coalescing)
        self._pacer = Pacer()
        self._thread: threading.Thread | None = None
        # Reentrant, for the same reason as the router's lock: GC may run a dropped stream's
        # cancel on the worker thread while it holds this lock.
        self._cond = threading.Condition(threading.RLock())
        # Guarded by _cond.
        self._table: RequestTable[_Sequence] = RequestTable(
            max_batch_size=self._config.max_batch_size, max_waiting=self._config.max_waiting
        )

    @property
    def info(self) -> EngineInfo:
        """Model and engine facts; valid after ``start``."""
        if self._info is None:
            raise RuntimeError("SimEngine.start() has not finished")
        return self._info

    @property
    def tokenizer(self) -> Tokenizer:
        """The embedded model's tokenizer; valid after ``start``."""
        if self._tokenizer is None:
            raise RuntimeError("SimEngine.start() has not finished")
        return self._tokenizer

    async def start(self) -> None:
        """Load the tokenizer (off the loop), tokenize the passage and start the worker thread."""
        config = self._config
        tokenizer = self._given_tokenizer
        if tokenizer is None:
            tokenizer = await asyncio.to_thread(load_tokenizer, config)
        passage = tuple(tokenizer.encode(PASSAGE, add_special_tokens=False))
        if not passage or tokenizer.eos_token_ids.intersection(passage):
            raise EngineError("the tokenizer turns the simulation's passage into no tokens or into EOS")
        copies = 1 + -(-(config.draft_length + 1) // len(passage))
        self._tokenizer, self._eos = tokenizer, tokenizer.eos_token_ids
        self._passage_length, self._ring = len(passage), passage * copies
        latency = config.mode is SimMode.LATENCY
        self._info = EngineInfo(
            model_name=MODEL_NAME,
            engine_name="sim",
            context_length=config.context_length,
            vocab_size=tokenizer.vocab_size,
            max_batch_size=config.max_batch_size,
            speculative=SpeculativeConfig(
                method=SpeculationMethod.EAGLE3 if latency else SpeculationMethod.OFF,
                draft_length=config.draft_length,
                simulated=True,
            ),
        )
        _log.warning(
            "simulated_engine_started",
            detail="load-testing engine: no model runs; every request streams a fixed passage",
            mode=config.mode.value,
            step_s=config.step_time_s(0),
            draft_length=config.draft_length,
            acceptance=config.acceptance if latency else None,
            max_batch_size=config.max_batch_size,
        )
        self._thread = threading.Thread(target=self._run, name="tokenwire-sim-worker", daemon=True)
        self._thread.start()

    async def shutdown(self) -> None:
        """Stop the worker; running and waiting requests end CANCELLED. Logs the ticks' lateness."""
        with self._cond:
            self._table.close()
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def generate(self, request: EngineRequest) -> AsyncGenerator[EngineOutput, None]:
        """Submit ``request`` now (raising ``EngineOverloaded`` here) and return its output stream.

        Must be called on the event loop that will iterate the stream. Sampling and
        speculation choices are ignored: every request gets the configured schedule.
        """
        if self._info is None:
            raise RuntimeError("SimEngine.start() has not finished")
        return open_stream(self._router, request, self._submit, self.cancel)

    def compile_structured_output(self, spec: StructuredOutput) -> None:
        """Never called: the simulation follows no formats (``info.structured_output_kinds`` is empty)."""
        raise InvalidStructuredOutput(f"the simulation engine does not follow {spec.kind.value} formats")

    def cancel(self, request_id: RequestId) -> None:
        """End a request CANCELLED and free its slot now; a no-op for unknown or finished ids."""
        now = time.monotonic()
        with self._cond:
            cancelled = self._table.cancel(request_id, now)
            if cancelled is not None:
                self._router.publish([cancelled])

    def load(self) -> EngineLoad:
        """Requests in the batch and requests waiting for a slot."""
        with self._cond:
            return self._table.load()

    def pacing(self) -> PacingReport:
        """How late the worker's ticks have fired so far (also logged at shutdown)."""
        return self._pacer.report()

    def _submit(self, request: EngineRequest) -> None:
        config = self._config
        request_id = request.request_id
        stopping = request.stopping
        ends = frozenset(stopping.stop_token_ids) | (frozenset() if stopping.ignore_eos else self._eos)
        sequence = _Sequence(
            request=request,
            progress=Progress(submitted_at=time.monotonic()),
            steps=step_sizes(
                request_id, acceptance=config.acceptance, max_draft=config.draft_length, seed=config.seed
            ),
            position=start_offset(request_id, self._passage_length),
            limit=min(stopping.max_tokens, config.context_length - len(request.prompt_token_ids)),
            ends=ends,
        )
        with self._cond:
            self._table.enqueue(sequence)
            self._cond.notify()

    # Everything below runs on the worker thread.

    def _run(self) -> None:
        pacer = self._pacer
        table = self._table
        while True:
            with self._cond:
                if not table.closed and table.empty:
                    while not table.closed and table.empty:
                        self._cond.wait()
                    pacer.restart()  # the tick that admits the newcomers is now
                if table.closed:
                    break
                updates: list[Update] = []
                now = time.monotonic()
                try:
                    for request_id, sequence in list(table.active.items()):
                        # A dropped stream's __del__ may cancel a request on this thread mid-loop.
                        if table.active.get(request_id) is sequence:
                            updates.append((request_id, self._step(sequence, now)))
                except Exception as error:  # a bug here must fail the batch, not hang its readers
                    _log.exception("sim_engine_step_failed")
                    updates.extend(table.fail_active(EngineError(f"simulation failed: {error}"), now))
                admitted, ended = table.admit(now, _may_generate)
                for sequence in admitted:
                    sequence.progress.started_at = now
                updates.extend(ended)
                interval = self._config.step_time_s(len(table.active))
                if updates:
                    self._router.publish(updates)
            pacer.wait(interval)
        self._cancel_everything()
        report = pacer.report()
        _log.info(
            "sim_engine_pacing",
            ticks=report.ticks,
            skipped_ticks=report.skipped_ticks,
            late_mean_ms=round(report.late_mean_s * 1e3, 3),
            late_p50_ms=round(report.late_p50_s * 1e3, 3),
            late_p99_ms=round(report.late_p99_s * 1e3, 3),
            late_p999_ms=round(report.late_p999_s * 1e3, 3),
            late_max_ms=round(report.late_max_s * 1e3, 3),
        )

    def _step(self, sequence: _Sequence, now: float) -> EngineOutput:
        """Under the lock: one step of ``sequence``; releases it when the step ends it.

        Runs for every request at every step: attributes are read once each.
        """
        before = sequence.emitted
        size = min(next(sequence.steps), sequence.limit - before)
        position = sequence.position
        tokens = self._ring[position : position + size]
        kept, reason, stop_token = size, None, None
        if sequence.ends:
            stopping = sequence.request.stopping
            if before + size > stopping.min_tokens:
                # Like a sampler that bans them, stop tokens before min_tokens do not stop.
                for index in range(max(stopping.min_tokens - before, 0), size):
                    token = tokens[index]
                    if token in sequence.ends:
                        kept = index
                        if token in self._eos and not stopping.ignore_eos:
                            reason = FinishReason.END_OF_SEQUENCE
                        else:
                            reason, stop_token = FinishReason.STOP_TOKEN, token
                        break
        used = kept if reason is None else kept + 1  # the stop token was generated, not emitted
        progress = sequence.progress
        progress.decode_steps += 1
        progress.draft_tokens += self._draft_length
        progress.accepted_draft_tokens += used - 1
        emitted = sequence.emitted = before + kept
        sequence.position = (position + used) % self._passage_length
        if kept < size:
            tokens = tokens[:kept]
        request = sequence.request
        logprobs = _certain_logprobs(tokens, request.top_logprobs) if request.logprobs else ()
        if reason is None:
            if emitted < sequence.limit:
                return EngineOutput(tokens, logprobs)
            reason = FinishReason.LENGTH
        self._table.release(sequence, now)
        return EngineOutput(tokens, logprobs, reason, stop_token, progress.stats(now))

    def _cancel_everything(self) -> None:
        now = time.monotonic()
        with self._cond:
            updates = self._table.cancel_all(now)
            if updates:
                self._router.publish(updates)


def _may_generate(sequence: _Sequence) -> bool:
    return sequence.limit > 0


def _certain_logprobs(tokens: tuple[TokenId, ...], top: int) -> tuple[TokenLogprob, ...]:
    """The simulated model is certain of every token: log-probability 0, the only candidate."""
    return tuple(TokenLogprob(t, 0.0, (TopLogprob(t, 0.0),) if top else ()) for t in tokens)


def load_tokenizer(config: SimEngineConfig) -> Tokenizer:
    """The tokenizer of ``config.gguf_path`` (SmolLM2's by default), what ``start`` uses when given none.

    Read through the native engine's converted-weights cache (about 0.5 s; the tensors are
    dropped at once; the first run on a machine converts the GGUF file, several seconds).
    Blocking: call it off the event loop.
    """
    # Imported here: the weights module pulls in torch, which nothing else in the sim needs.
    from engines.native.tokenizer import NativeTokenizer
    from engines.native.weights import default_gguf_path, load_weights

    gguf_path = config.gguf_path if config.gguf_path is not None else default_gguf_path()
    return NativeTokenizer(load_weights(gguf_path, config.cache_dir).tokenizer)
