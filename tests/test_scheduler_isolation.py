"""One request's failure ends that request alone (issue 11, item 1).

The scheduler runs on its worker thread over a tiny random model (tests/test_steps.py's),
with failures injected where a real one could arise: one request's sampling, and the
shared decode pass (failing for the batch only, or for one request's rows every time).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
import torch

from engines.contract import (
    EngineError,
    EngineOutput,
    EngineRequest,
    FinishReason,
    RequestId,
    SamplingParams,
    StoppingParams,
    TokenId,
)
from engines.delivery import Update
from engines.native.kv_cache import KVCache
from engines.native.matrices import WeightFormat
from engines.native.model import Transformer
from engines.native.sampling import RequestSampler, SampledToken
from engines.native.scheduler import Scheduler, SchedulerConfig
from tests.tiny_model import CONFIG, EOS, PROMPT, random_weights

MAX_TOKENS = 12
POISON_TEMPERATURE = 0.375
"""A request sampled at this temperature has its sampler fail (see ``poisoned_sampling``)."""


@dataclass
class Ended:
    tokens: list[TokenId]
    reason: FinishReason | None
    error: EngineError | None


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer.from_weights(CONFIG, random_weights(CONFIG), CONFIG.context_length, WeightFormat.FP32)


class Harness:
    def __init__(self, model: Transformer) -> None:
        cache = KVCache(
            n_layers=CONFIG.n_layers,
            max_slots=4,
            n_kv_heads=CONFIG.n_kv_heads,
            max_seq=CONFIG.context_length,
            head_dim=CONFIG.head_dim,
        )
        self.updates: queue.Queue[Update] = queue.Queue()
        self.scheduler = Scheduler(
            model,
            cache,
            eos_token_ids=EOS,
            vocab_size=CONFIG.vocab_size,
            config=SchedulerConfig(max_batch_size=4, max_waiting=8, context_length=CONFIG.context_length),
            publish=self._publish,
        )
        self._thread = threading.Thread(target=self.scheduler.run, daemon=True)

    def _publish(self, updates: Sequence[Update]) -> None:
        for update in updates:
            self.updates.put(update)

    def run(self, requests: Sequence[EngineRequest]) -> dict[str, Ended]:
        """Submit all at once, then collect every request's end."""
        for request in requests:
            self.scheduler.submit(request)
        self._thread.start()
        ended: dict[str, Ended] = {}
        tokens: dict[str, list[TokenId]] = {r.request_id: [] for r in requests}
        try:
            while len(ended) < len(requests):
                request_id, update = self.updates.get(timeout=60)
                if isinstance(update, EngineError):
                    ended[request_id] = Ended(tokens[request_id], None, update)
                    continue
                assert isinstance(update, EngineOutput)
                tokens[request_id].extend(update.token_ids)
                if update.finish_reason is not None:
                    ended[request_id] = Ended(tokens[request_id], update.finish_reason, None)
        finally:
            self.scheduler.stop()
            self._thread.join(timeout=30)
        return ended


def _request(name: str, temperature: float = 0.0) -> EngineRequest:
    return EngineRequest(
        request_id=RequestId(name),
        prompt_token_ids=PROMPT,
        sampling=SamplingParams(temperature=temperature, seed=1),
        stopping=StoppingParams(max_tokens=MAX_TOKENS, ignore_eos=True),
    )


def _solo(model: Transformer, name: str) -> list[TokenId]:
    ended = Harness(model).run([_request(name)])
    assert ended[name].reason is FinishReason.LENGTH
    return ended[name].tokens


@pytest.fixture
def poisoned_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    real_choose = RequestSampler.choose

    def choose(self: RequestSampler, logits: torch.Tensor) -> SampledToken:
        if self.temperature == POISON_TEMPERATURE and self.generated >= 2:
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return real_choose(self, logits)

    monkeypatch.setattr(RequestSampler, "choose", choose)


def test_a_failing_sampler_ends_its_request_alone(model: Transformer, poisoned_sampling: None) -> None:
    expected = _solo(model, "a")
    ended = Harness(model).run([_request("a"), _request("bad", POISON_TEMPERATURE), _request("c")])
    assert ended["bad"].error is not None and "inference failed" in str(ended["bad"].error)
    assert len(ended["bad"].tokens) == 2  # what it produced before its own failure went out
    for name in ("a", "c"):
        assert ended[name].error is None and ended[name].reason is FinishReason.LENGTH
        assert ended[name].tokens == expected  # same prompt, greedy: as if it ran alone


Forward = Callable[..., torch.Tensor]


def _patch_forward(
    monkeypatch: pytest.MonkeyPatch, fail: Callable[[torch.Tensor, Sequence[int]], bool]
) -> None:
    """Make ``Transformer.forward`` raise for the passes ``fail`` picks (tokens [B, T], slots)."""
    real: Forward = Transformer.forward

    def forward(
        self: Transformer,
        tokens: torch.Tensor,
        slots: Sequence[int],
        starts: Sequence[int],
        cache: KVCache,
        *,
        all_logits: bool = False,
    ) -> torch.Tensor:
        if fail(tokens, slots):
            raise RuntimeError("forward pass failed")
        return real(self, tokens, slots, starts, cache, all_logits=all_logits)

    monkeypatch.setattr(Transformer, "forward", forward)


@pytest.fixture
def flaky_shared_pass(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first three multi-row decode passes fail; one-row passes work."""
    failures: list[int] = []

    def fail(tokens: torch.Tensor, slots: Sequence[int]) -> bool:
        if tokens.shape[0] > 1 and len(failures) < 3:
            failures.append(tokens.shape[0])
            return True
        return False

    _patch_forward(monkeypatch, fail)
    return failures


def test_a_failed_shared_pass_is_retried_per_request(
    model: Transformer, flaky_shared_pass: list[int]
) -> None:
    ended = Harness(model).run([_request("a"), _request("b"), _request("c")])
    assert flaky_shared_pass == [3, 3, 3]  # it did fail, three times
    expected = _solo(model, "x")
    for name in ("a", "b", "c"):
        assert ended[name].error is None and ended[name].reason is FinishReason.LENGTH
        assert ended[name].tokens == expected


@pytest.fixture
def one_bad_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decode pass that includes slot 1 fails, alone or batched."""
    _patch_forward(monkeypatch, lambda tokens, slots: 1 in slots and tokens.shape[1] == 1)


def test_a_request_that_fails_alone_too_is_the_only_one_ended(model: Transformer, one_bad_row: None) -> None:
    ended = Harness(model).run([_request("a"), _request("b"), _request("c")])
    assert [name for name, end in ended.items() if end.error is not None] == ["b"]  # slot 1
    assert all(ended[n].reason is FinishReason.LENGTH and len(ended[n].tokens) == MAX_TOKENS for n in "ac")
