"""EAGLE-3 training data: greedy and sampled answers per prompt, resumable, reproducible."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from engines.native.eagle3.dataset import (
    FOLLOW_UPS,
    SAMPLED_TEMPERATURE,
    answer_sampling,
    benchmark_prompts,
    follow_ups,
    generate_sequences,
    read_prompts,
    read_sequences,
    training_prompts,
    validation_prompts,
)

PROMPTS = ["Name a colour.", "Say something about the sea."]


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_answer_zero_is_greedy_and_the_others_are_seeded_per_prompt_and_number() -> None:
    assert answer_sampling("x", 0).temperature == 0.0
    first, again, other, next_one = (
        answer_sampling(t, k) for t, k in (("x", 1), ("x", 1), ("y", 1), ("x", 2))
    )
    assert first == again and first.temperature == SAMPLED_TEMPERATURE
    assert len({first.seed, other.seed, next_one.seed}) == 3


def test_sampled_answers_are_added_resumably(tmp_path: Path) -> None:
    out = tmp_path / "sequences.jsonl"

    def generate(samples: int) -> None:
        asyncio.run(generate_sequences(PROMPTS, out, max_tokens=6, concurrency=2, threads=2, samples=samples))

    generate(2)
    first = records(out)
    assert sorted((r["text"], r["sample"]) for r in first) == sorted((p, k) for p in PROMPTS for k in (0, 1))
    generate(2)  # nothing is missing: nothing is added
    assert records(out) == first
    generate(3)  # only the third answers are added
    added = records(out)[len(first) :]
    assert sorted((r["text"], r["sample"]) for r in added) == sorted((p, 2) for p in PROMPTS)
    assert len(read_sequences(out)) == 3 * len(PROMPTS)
    # A record from before answer numbers existed counts as answer 0.
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text(json.dumps({"text": PROMPTS[0], "prompt": [1], "answer": [2]}) + "\n")
    asyncio.run(generate_sequences(PROMPTS[:1], legacy, max_tokens=6, concurrency=1, threads=2, samples=1))
    assert len(records(legacy)) == 1


def test_follow_ups_build_on_greedy_single_turn_answers_only() -> None:
    def decode(ids: Sequence[int]) -> str:
        return " ".join(f"t{i}" for i in ids)

    records: list[dict[str, object]] = [
        {"text": "a", "sample": 0, "answer": [1, 2]},
        {"text": "a", "sample": 1, "answer": [3]},  # sampled: not built on
        {"text": "b", "answer": [4]},  # legacy record: answer 0
        {"text": "c", "sample": 0, "turns": ["c", "x", "y"], "answer": [5]},  # already two turns
        {"text": "d", "sample": 0, "answer": []},  # nothing to follow up
    ]
    conversations = follow_ups(records, decode)
    assert [c[:2] for c in conversations] == [("a", "t1 t2"), ("b", "t4")]
    assert all(c[2] in FOLLOW_UPS for c in conversations)
    assert follow_ups(records, decode) == conversations  # the follow-up depends on the prompt alone


def test_a_conversation_is_answered_as_its_last_turn_and_resumed(tmp_path: Path) -> None:
    out = tmp_path / "sequences.jsonl"
    turns = ("Name a colour.", "Blue.", "Name another one.")

    def generate() -> None:
        asyncio.run(
            generate_sequences([PROMPTS[0], turns], out, max_tokens=6, concurrency=2, threads=2, samples=1)
        )

    generate()
    first = records(out)
    by_turns: dict[tuple[str, ...], dict[str, object]] = {}
    for record in first:
        listed = record.get("turns", [record["text"]])
        assert isinstance(listed, list)
        by_turns[tuple(str(t) for t in listed)] = record
    assert set(by_turns) == {(PROMPTS[0],), turns}
    single, multi = by_turns[(PROMPTS[0],)], by_turns[turns]
    assert "turns" not in single
    # The two-turn prompt holds the single-turn one's user message, then the rest of the chat.
    assert isinstance(multi["prompt"], list) and isinstance(single["prompt"], list)
    assert len(multi["prompt"]) > len(single["prompt"])
    generate()
    assert records(out) == first
    assert answer_sampling(turns, 1) != answer_sampling(turns[0], 1)


def test_prompt_files_in_jsonl_may_hold_newlines(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps("Fix this:\ndef f(:\n  pass") + "\n\n" + json.dumps("Hi") + "\n")
    assert read_prompts(path) == ["Fix this:\ndef f(:\n  pass", "Hi"]
    assert read_prompts(tmp_path / "missing.jsonl") == []
    path.write_text(json.dumps(["not", "a", "string"]) + "\n")
    with pytest.raises(ValueError, match="JSON string"):
        read_prompts(path)


def test_held_out_prompts_split_into_validation_and_test_and_are_never_trained_on() -> None:
    train = set(training_prompts())
    validation, final = validation_prompts(), benchmark_prompts()
    assert validation and final
    assert not set(validation) & set(final)
    assert not (set(validation) | set(final)) & train
