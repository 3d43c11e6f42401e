"""EAGLE-3 training data: greedy and sampled answers per prompt, resumable, reproducible."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from engines.native.eagle3.dataset import (
    SAMPLED_TEMPERATURE,
    answer_sampling,
    generate_sequences,
    read_sequences,
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
