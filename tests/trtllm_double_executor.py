"""Part of the TEST DOUBLE of ``tensorrt_llm`` (tests/trtllm_double.py): its executor and streams.

TensorRT-LLM cannot be installed here (it needs an NVIDIA GPU and NVIDIA's own
wheels). ``DoubleExecutor`` runs the iterations on its own thread, as
TensorRT-LLM's executor does, producing each prompt's deterministic script
(``double_tokens``), several tokens a step under EAGLE (``tokens_per_step``);
``DoubleRequestOutput`` is the streaming ``RequestOutput`` the LLM hands out,
updated in place as the consumer reads it. The behaviour reproduced is listed in
tests/trtllm_double.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

from tests.trtllm_double_configs import DoubleSamplingParams


class DoubleRequestError(RuntimeError):
    """``tensorrt_llm.executor.utils.RequestError``: one request failed in the executor."""


@dataclass(slots=True)
class DoubleLogprob:
    """``tensorrt_llm.executor.result.Logprob``."""

    logprob: float
    rank: int | None = None


@dataclass(slots=True)
class DoubleCompletionOutput:
    """``CompletionOutput``: cumulative, updated in place by the consumer's ``__anext__``."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[dict[int, DoubleLogprob]] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    request_perf_metrics: object | None = None
    _last_token_ids_len: int = 0

    @property
    def token_ids_diff(self) -> list[int]:
        return self.token_ids[self._last_token_ids_len :]


@dataclass(frozen=True, slots=True)
class _Response:
    """What the executor sends per step (``tllm.Response`` for one sequence)."""

    new_token_ids: tuple[int, ...] = ()
    new_logprobs: tuple[dict[int, DoubleLogprob], ...] = ()
    finish_reason: str | None = None
    stop_reason: int | None = None
    perf_metrics: object | None = None
    error: str | None = None
    decoding_iter: int = 0


@dataclass(slots=True)
class DoubleControls:
    """Knobs the tests set before the engine builds its LLM."""

    step_delay_s: float = 0.002
    """Executor iteration time (a GPU step)."""
    end_after_tokens: int | None = None
    """Emit ``end_id`` as this token (0-based), unless ignore_eos."""
    fail_prompts_starting_with: int | None = None
    """Requests whose first prompt token is this fail with an executor error..."""
    fail_after_steps: int = 1
    """...after this many steps."""
    ignore_eos_drops_stop_words: bool = False
    """Mimic versions whose _enqueue_request sends stop_words=[] when ignore_eos."""
    version: str = "1.2.1"
    """The release the double plays (``installed(version=...)``)."""


def double_tokens(prompt_token_ids: Sequence[int], count: int) -> list[int]:
    """The double model's deterministic output for a prompt: ordinary ids of a 49152-token vocabulary."""
    seed = sum(prompt_token_ids) * 31 + len(prompt_token_ids)
    return [1000 + (seed * 7919 + i * 104729) % 30000 for i in range(count)]


def tokens_per_step(prompt_token_ids: Sequence[int], step: int, max_draft_len: int) -> int:
    """Target token + accepted drafts at iteration ``step`` (1-based; the prompt's, the first, yields 1)."""
    if step == 1:
        return 1
    return 1 + (sum(prompt_token_ids) + step) % (max_draft_len + 1)


@dataclass(frozen=True, slots=True)
class SpecTruth:
    """A finished request's real iterations, drafted and accepted tokens (not visible to the adapter)."""

    iterations: int
    draft_tokens: int
    accepted_draft_tokens: int


class DoubleRequestOutput:
    """``RequestOutput`` / ``GenerationResult`` of one streaming request."""

    def __init__(self, executor: DoubleExecutor, request_id: int, params: DoubleSamplingParams) -> None:
        self.request_id = request_id
        self.sampling_params = params
        self._executor = executor
        self._loop = asyncio.get_running_loop()  # AsyncQueue binds to the caller's loop
        self._queue: asyncio.Queue[_Response] = asyncio.Queue()
        self._outputs = [DoubleCompletionOutput(index=0)]
        self._done = False
        self._aborted = False
        self.decoding_iter = 0
        """GenerationResultBase.decoding_iter: the request's iterations so far, as of the last response."""
        self.truth: SpecTruth | None = None
        """What the executor really did (set when it finishes), for tests to check derived stats against."""

    @property
    def outputs(self) -> list[DoubleCompletionOutput]:
        return self._outputs

    @property
    def finished(self) -> bool:
        return self._done

    def abort(self) -> None:
        self._executor.abort_request(self.request_id)
        self._aborted = True

    def aborted(self) -> bool:
        return self._aborted

    def deliver(self, response: _Response) -> None:
        """From the executor thread."""
        with contextlib.suppress(RuntimeError):  # the consumer's loop is closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, response)

    def __aiter__(self) -> DoubleRequestOutput:
        return self

    async def __anext__(self) -> DoubleRequestOutput:
        if self._done:
            raise StopAsyncIteration
        response = await self._queue.get()
        if response.error is not None:
            raise DoubleRequestError(response.error)
        self._handle(response)
        return self

    def _handle(self, response: _Response) -> None:
        # As _handle_sequence: extend token_ids, replace logprobs with the cumulative list,
        # set finish_reason/stop_reason and trim the stop word on the final response.
        output = self._outputs[0]
        self.decoding_iter = response.decoding_iter
        output._last_token_ids_len = len(output.token_ids)
        output.token_ids.extend(response.new_token_ids)
        output.logprobs = [*output.logprobs, *response.new_logprobs]
        if response.finish_reason is not None:
            self._done = True
            output.finish_reason = response.finish_reason
            output.request_perf_metrics = response.perf_metrics
            if response.stop_reason is not None:
                output.stop_reason = response.stop_reason
                if output.token_ids[-1:] == [response.stop_reason]:
                    output.token_ids = output.token_ids[:-1]


@dataclass(slots=True)
class _Running:
    result: DoubleRequestOutput
    prompt: tuple[int, ...]
    script: list[int]
    arrival: datetime.timedelta
    produced: int = 0
    steps: int = 0
    draft_tokens: int = 0
    accepted: int = 0
    first_iter: int | None = None
    scheduled: datetime.timedelta | None = None
    abort_requested: bool = False
    pending: list[int] = field(default_factory=list)
    pending_logprobs: list[dict[int, DoubleLogprob]] = field(default_factory=list)


class DoubleExecutor:
    """The executor loop, on its own thread like TensorRT-LLM's."""

    def __init__(self, controls: DoubleControls, max_draft_len: int, stream_interval: int) -> None:
        self._controls = controls
        self._max_draft_len = max_draft_len
        self._stream_interval = stream_interval
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._iteration = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trtllm-double-executor", daemon=True)
        self._thread.start()
        self.aborted_ids: list[int] = []

    @property
    def running_requests(self) -> int:
        with self._lock:
            return len(self._running)

    def submit(self, result: DoubleRequestOutput, prompt: Sequence[int], max_tokens: int) -> None:
        now = _steady_now()
        running = _Running(result, tuple(prompt), double_tokens(prompt, max_tokens), arrival=now)
        with self._lock:
            self._running[result.request_id] = running

    def abort_request(self, request_id: int) -> None:
        with self._lock:
            self.aborted_ids.append(request_id)
            if (running := self._running.get(request_id)) is not None:
                running.abort_requested = True

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._controls.step_delay_s):
            with self._lock:
                self._iteration += 1
                for request_id, running in list(self._running.items()):
                    response = self._step(running)
                    final = response.finish_reason is not None or response.error is not None
                    if final:
                        del self._running[request_id]
                        running.result.truth = SpecTruth(
                            running.steps, running.draft_tokens, running.accepted
                        )
                    running.pending += response.new_token_ids
                    running.pending_logprobs += response.new_logprobs
                    # PyExecutor._handle_responses: the first iteration, every stream_interval-th, the last.
                    if final or running.steps == 1 or running.steps % self._stream_interval == 0:
                        running.result.deliver(
                            dataclasses.replace(
                                response,
                                new_token_ids=tuple(running.pending),
                                new_logprobs=tuple(running.pending_logprobs),
                                decoding_iter=running.steps,
                            )
                        )
                        running.pending, running.pending_logprobs = [], []

    def _step(self, running: _Running) -> _Response:
        params = running.result.sampling_params
        if running.abort_requested:
            return _Response(finish_reason="cancelled", perf_metrics=self._perf(running))
        if running.first_iter is None:
            running.first_iter, running.scheduled = self._iteration, _steady_now()
        running.steps += 1
        controls = self._controls
        if (
            controls.fail_prompts_starting_with == running.prompt[0]
            and running.steps > controls.fail_after_steps
        ):
            return _Response(error="executor failed: CUDA error (simulated)")
        count = tokens_per_step(running.prompt, running.steps, self._max_draft_len)
        max_tokens = params.int_value("max_tokens") or 32
        min_tokens = params.int_value("min_tokens") or 0
        ignore_eos = params.values["ignore_eos"] is True
        end_id = -1 if ignore_eos else params.int_value("end_id")
        stop_ids = params.values["stop_token_ids"]
        if ignore_eos and controls.ignore_eos_drops_stop_words:
            stop_ids = None
        stop_set = set(stop_ids) if isinstance(stop_ids, list) else set()
        new: list[int] = []
        finish: str | None = None
        stop_reason: int | None = None
        for _ in range(count):
            position = running.produced
            end_at = controls.end_after_tokens
            if (
                end_id is not None
                and end_id >= 0
                and end_at is not None
                and position >= max(end_at, min_tokens)
            ):
                finish = "stop"  # END_ID: not part of the output
                break
            token = running.script[position] if position < len(running.script) else 0
            new.append(token)
            running.produced += 1
            if token in stop_set:
                finish, stop_reason = "stop", token
                break
            if running.produced >= max_tokens:
                finish = "length"
                break
        if self._max_draft_len and running.steps > 1:  # drafts verified this step, and those kept
            produced = len(new) + (1 if finish == "stop" and stop_reason is None else 0)  # + the end token
            running.draft_tokens += self._max_draft_len
            running.accepted += max(0, produced - 1)
        k = params.int_value("logprobs") or 0
        logprobs = tuple(_logprobs(token, k) for token in new) if k else ()
        perf = self._perf(running) if finish is not None else None
        return _Response(tuple(new), logprobs, finish, stop_reason, perf)

    def _perf(self, running: _Running) -> object | None:
        if running.result.sampling_params.values["return_perf_metrics"] is not True:
            return None
        scheduled = running.scheduled or running.arrival
        return SimpleNamespace(
            timing_metrics=SimpleNamespace(
                arrival_time=running.arrival,
                first_scheduled_time=scheduled,
                first_token_time=scheduled,
                last_token_time=_steady_now(),
            ),
            # Never filled on the PyTorch path before PR #17082 (what the adapter must cope with).
            speculative_decoding=SimpleNamespace(
                total_draft_tokens=0, total_accepted_draft_tokens=0, acceptance_rate=0.0
            ),
            first_iter=running.first_iter,
            last_iter=None if running.first_iter is None else running.first_iter + running.steps - 1,
            iter=None if running.first_iter is None else running.first_iter + running.steps - 1,
        )


def _logprobs(token: int, k: int) -> dict[int, DoubleLogprob]:
    # The sampled token first (rank 1), then k - 1 other candidates; as compute_logprobs returns them.
    entries = {token: DoubleLogprob(-0.25, rank=1)}
    for j in range(1, k):
        entries[token + j] = DoubleLogprob(-1.0 - j, rank=1 + j)
    return entries


def _steady_now() -> datetime.timedelta:
    return datetime.timedelta(seconds=time.monotonic())
