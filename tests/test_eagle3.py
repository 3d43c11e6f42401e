"""The EAGLE-3 draft head: inference equals the unrolled training computation, the shipped
weights load only when they match their manifest, and the served API exposes the head."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tokenwire.v1 import generation_pb2, model_pb2

from engines.contract import (
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    SpeculationParams,
    StoppingParams,
    TokenId,
)
from engines.native.eagle3.drafting import Eagle3Drafting
from engines.native.eagle3.head import (
    DEFAULT_HEAD,
    Eagle3Config,
    Eagle3Drafter,
    Eagle3Head,
    HeadIntegrityError,
    load_head,
    manifest_path,
    read_manifest,
)
from engines.native.request_state import RequestState
from tests.streams import collect
from tests.stubs import GenerationStub, ModelStub

TINY = Eagle3Config(
    dim=32,
    n_heads=4,
    n_kv_heads=2,
    head_dim=8,
    ffn_dim=48,
    draft_vocab_size=20,
    target_vocab_size=50,
    feature_layers=(0, 1, 2),
    norm_eps=1e-5,
    rope_theta=1e4,
)


def _tiny_head() -> tuple[Eagle3Head, torch.Tensor]:
    torch.manual_seed(0)
    head = Eagle3Head(TINY, max_seq=64)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.normal_(0.0, 0.3)
        head.d2t.copy_(torch.randperm(TINY.target_vocab_size)[: TINY.draft_vocab_size])
    return head, torch.randn(TINY.target_vocab_size, TINY.dim)


def test_drafting_computes_what_training_unrolls() -> None:
    """Each inference step's logits equal the training-time-test unroll's at that position,
    whether the verified prefix entered the head at once or over several steps."""
    head, embeddings = _tiny_head()
    length, steps = 12, 4
    features = torch.randn(1, length, 3 * TINY.dim)
    tokens = torch.randint(0, TINY.target_vocab_size, (1, length + steps))
    with torch.no_grad():
        unrolled = head.unroll(features, tokens, embeddings, steps)
        drafter = Eagle3Drafter(head, lambda ids: F.embedding(ids, embeddings), max_slots=2, max_seq=64)
        for p in (0, 4, 11):
            # Positions 0..p verified (each followed by x_{p+1}); the drafts forced to the sequence.
            got = drafter.chain_logits(
                1,
                0,
                features[0, : p + 1],
                tokens[0, 1 : p + 2].tolist(),
                tokens[0, p + 2 : p + 1 + steps].tolist(),
            )
            assert len(got) == steps
            for step, logits in enumerate(got):
                torch.testing.assert_close(logits, unrolled[step][0, p], rtol=1e-4, atol=1e-5)
        # Incremental: positions 0..5 enter first, 6..9 at the next step.
        drafter.chain_logits(0, 0, features[0, :6], tokens[0, 1:7].tolist(), [])
        got = drafter.chain_logits(
            0, 6, features[0, 6:10], tokens[0, 7:11].tolist(), tokens[0, 11:14].tolist()
        )
        for step, logits in enumerate(got):
            torch.testing.assert_close(logits, unrolled[step][0, 9], rtol=1e-4, atol=1e-5)
        # draft() is the greedy choice of those logits, mapped to target ids.
        drafted = drafter.draft(0, 6, features[0, 6:10], tokens[0, 7:11].tolist(), 1)
        assert drafted == [int(head.d2t[int(unrolled[0][0, 9].argmax())])]


def test_a_wrong_attention_rule_would_be_caught() -> None:
    """The equality above is sensitive: inference that ignored the speculative entries differs."""
    head, embeddings = _tiny_head()
    features = torch.randn(1, 8, 3 * TINY.dim)
    tokens = torch.randint(0, TINY.target_vocab_size, (1, 12))
    with torch.no_grad():
        unrolled = head.unroll(features, tokens, embeddings, 3)
        drafter = Eagle3Drafter(head, lambda ids: F.embedding(ids, embeddings), max_slots=1, max_seq=64)
        got = drafter.chain_logits(0, 0, features[0, :5], tokens[0, 1:6].tolist(), tokens[0, 6:8].tolist())
        # A third step fed a different second token no longer matches the unroll.
        other = drafter.chain_logits(
            0, 0, features[0, :5], tokens[0, 1:6].tolist(), [int(tokens[0, 6]) + 1, 0]
        )
    torch.testing.assert_close(got[2], unrolled[2][0, 4], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(other[2], unrolled[2][0, 4], atol=1e-3)


class _RecordingHead:
    """Stands in for ``Eagle3Drafter``: proposes ``drafts`` and records what it was given."""

    config = TINY

    def __init__(self, drafts: list[int]) -> None:
        self.drafts = drafts
        self.calls: list[tuple[int, int, int, list[int]]] = []

    def draft(
        self, slot: int, start: int, features: torch.Tensor, next_tokens: Sequence[int], max_draft: int
    ) -> list[int]:
        self.calls.append((slot, start, features.shape[0], list(next_tokens)))
        return self.drafts[:max_draft]


def _request_state(name: str, prompt: list[int], slot: int) -> RequestState:
    request = EngineRequest(
        request_id=RequestId(name),
        prompt_token_ids=tuple(TokenId(t) for t in prompt),
        sampling=SamplingParams(temperature=0.0),
        stopping=StoppingParams(max_tokens=8),
    )
    state = RequestState.submitted(
        request,
        eos_token_ids=frozenset(),
        vocab_size=TINY.target_vocab_size,
        context_length=64,
        speculation=SpeculationParams(SpeculationMethod.EAGLE3, 4),
        now=0.0,
    )
    state.slot = slot
    return state


def test_the_eagle3_drafter_enters_each_requests_new_positions_once() -> None:
    """Features wait per request until its next draft enters them; a forgotten request starts over."""
    head = _RecordingHead([])
    drafter = Eagle3Drafting(head)
    features = torch.randn(8, 3 * TINY.dim)
    first = _request_state("first", [11, 12, 13, 14], slot=1)
    other = _request_state("other", [21, 22, 23], slot=0)
    drafter.observe(first, features[:2])
    drafter.observe(other, features[:2])
    drafter.observe(first, features[2:3])
    drafter.propose(first, 2)
    drafter.propose(other, 2)
    # Every position but the newest has features and a known next token.
    assert head.calls == [(1, 0, 3, [12, 13, 14]), (0, 0, 2, [22, 23])]
    first.output.extend([TokenId(15), TokenId(16)])
    drafter.observe(first, features[:2])
    drafter.propose(first, 2)
    assert head.calls[-1] == (1, 3, 2, [15, 16])
    first.output.append(TokenId(17))
    drafter.observe(first, features[:6])  # as if from position 0 again: it does not fit
    with pytest.raises(RuntimeError, match="cover 6 positions, expected 1"):
        drafter.propose(first, 2)
    # A request that ended is forgotten: the same id starts from position 0 again.
    drafter.forget(first.request_id)
    drafter.observe(first, features[:6])
    drafter.propose(first, 2)
    assert head.calls[-1] == (1, 0, 6, [12, 13, 14, 15, 16, 17])


def test_the_eagle3_drafter_takes_lookups_draft_only_when_it_is_longer() -> None:
    """Prompt lookup's draft replaces the head's when a 3-token match proposes more tokens."""
    copying = [1, 2, 3, 4, 5, 1, 2, 3]  # "1 2 3" was followed by "4 5 1"
    timid, bold = Eagle3Drafting(_RecordingHead([])), Eagle3Drafting(_RecordingHead([9, 8, 7]))
    for drafter, expected in ((timid, (4, 5, 1)), (bold, (9, 8, 7))):  # a tie keeps the head's
        state = _request_state("copying", copying, slot=0)
        drafter.observe(state, torch.randn(7, 3 * TINY.dim))
        assert drafter.propose(state, 3) == expected
    # Only a 2-token match ("1 2"): the head's empty draft stands.
    open_ended = _request_state("open", [1, 2, 7, 8, 9, 1, 2], slot=1)
    timid.observe(open_ended, torch.randn(6, 3 * TINY.dim))
    assert timid.propose(open_ended, 3) == ()


def test_the_shipped_head_matches_its_manifest() -> None:
    manifest = read_manifest(DEFAULT_HEAD)
    head, digest = load_head(DEFAULT_HEAD, max_seq=128)
    assert digest == manifest["sha256"]
    config = head.config
    assert config.dim == 576 and config.target_vocab_size == 49152
    assert head.lm_head.weight.shape == (config.draft_vocab_size, 576)
    assert head.d2t.shape == (config.draft_vocab_size,)
    assert len(set(head.d2t.tolist())) == config.draft_vocab_size  # a one-to-one map into the target's
    assert DEFAULT_HEAD.stat().st_size < 20 * 2**20


def test_a_corrupted_or_mismatched_head_is_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "head.safetensors"
    shutil.copy(DEFAULT_HEAD, corrupt)
    shutil.copy(manifest_path(DEFAULT_HEAD), manifest_path(corrupt))
    data = bytearray(corrupt.read_bytes())
    data[-10] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(HeadIntegrityError, match="sha256"):
        load_head(corrupt, max_seq=64)

    mismatched = tmp_path / "other.safetensors"
    shutil.copy(DEFAULT_HEAD, mismatched)
    manifest = json.loads(manifest_path(DEFAULT_HEAD).read_text())
    manifest["config"]["ffn_dim"] += 8
    manifest_path(mismatched).write_text(json.dumps(manifest))
    with pytest.raises(HeadIntegrityError, match="config"):
        load_head(mismatched, max_seq=64)

    with pytest.raises(FileNotFoundError):
        load_head(tmp_path / "missing.safetensors", max_seq=64)


# Through the gRPC API (the session's live server runs the default configuration).


async def test_model_info_reports_the_head(model: ModelStub) -> None:
    info = await model.GetModelInfo(model_pb2.GetModelInfoRequest())
    speculative = info.speculative
    assert speculative.enabled and speculative.method == "eagle3" and speculative.draft_length == 4
    assert list(speculative.available_methods) == ["off", "ngram", "eagle3"]
    assert speculative.draft_model == f"{DEFAULT_HEAD.stem}@sha256:{read_manifest(DEFAULT_HEAD)['sha256']}"


async def test_grpc_eagle3_is_lossless_and_drafts_on_open_ended_text(generation: GenerationStub) -> None:
    spec = generation_pb2.SpeculativeOptions

    def request(
        method: generation_pb2.SpeculativeOptions.SpeculativeMethod.ValueType,
    ) -> generation_pb2.GenerateRequest:
        return generation_pb2.GenerateRequest(
            chat=generation_pb2.Chat(
                messages=[generation_pb2.ChatMessage(role="user", content="Tell me about lighthouses.")]
            ),
            sampling=generation_pb2.SamplingParams(temperature=0.0),
            stopping=generation_pb2.StoppingCriteria(max_tokens=48),
            speculative=spec(method=method),
        )

    plain = await collect(generation.Generate(request(spec.SPECULATIVE_METHOD_OFF)))
    eagle = await collect(generation.Generate(request(spec.SPECULATIVE_METHOD_EAGLE3)))
    assert eagle.token_ids == plain.token_ids and eagle.text == plain.text
    assert eagle.finished is not None
    stats, usage = eagle.finished.speculative, eagle.finished.usage
    assert stats.accepted_tokens > 0 and stats.decode_steps < usage.completion_tokens
    not_output = 1 if eagle.reason == generation_pb2.FINISH_REASON_END_OF_SEQUENCE else 0
    assert usage.completion_tokens == stats.accepted_tokens + stats.decode_steps - not_output


def test_eagle3_is_refused_where_the_server_has_no_head() -> None:
    from engines.native.tokenizer import NativeTokenizer
    from engines.native.weights import default_gguf_path, load_weights
    from service.errors import InvalidArgument
    from service.validation import Limits, prepare_generation

    tokenizer = NativeTokenizer(load_weights(default_gguf_path(), None, None).tokenizer)
    spec = generation_pb2.SpeculativeOptions
    request = generation_pb2.GenerateRequest(
        text="Hello", speculative=spec(method=spec.SPECULATIVE_METHOD_EAGLE3)
    )
    without_head = Limits(
        context_length=1024,
        vocab_size=49152,
        default_max_tokens=16,
        default_speculation=SpeculationMethod.NGRAM,
        default_draft_length=4,
        speculation_methods=frozenset({SpeculationMethod.OFF, SpeculationMethod.NGRAM}),
    )
    with pytest.raises(InvalidArgument) as raised:
        prepare_generation(request, tokenizer, without_head, assigned_id=RequestId("x"), require_id=False)
    [violation] = raised.value.violations
    assert violation.field == "speculative.method"
    assert "eagle3 is not available" in violation.description and "ngram, off" in violation.description
    with_head = Limits(
        context_length=1024,
        vocab_size=49152,
        default_max_tokens=16,
        speculation_methods=frozenset(SpeculationMethod),
    )
    prepared = prepare_generation(request, tokenizer, with_head, assigned_id=RequestId("x"), require_id=False)
    assert prepared.engine_request.speculation is not None
    assert prepared.engine_request.speculation.method is SpeculationMethod.EAGLE3
