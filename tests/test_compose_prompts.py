"""The composed EAGLE-3 prompt set: committed files match the composer, splits are clean and varied."""

from __future__ import annotations

import re

from engines.native.eagle3.compose_prompts import (
    HELDOUT_OUT,
    MAX_CHARS,
    OLD_PROMPT_FILES,
    TRAIN_OUT,
    compose,
    compose_by_family,
    heldout_materials,
)
from engines.native.eagle3.dataset import read_prompts

FAMILIES = (
    "code",
    "lists",
    "rewriting",
    "questions",
    "math",
    "structured",
    "extraction",
    "creative",
    "advice",
    "role",
)

# Each kind of prompt of each family, by the words its phrasings use (case-insensitive): every kind
# must occur among its family's prompts in both splits.
KINDS = {
    "code": {
        "code block": r"```",
        "write code": r"\b(python|javascript|go|rust|c|node\.js) (function|class|struct|script|program|code)",
        "sql": r"\bsql\b|\bquery\b",
        "bash": r"\bbash (script|command)|shell one-liner",
        "find the bug": r"\bbug\b|mistake|wrong|doesn't work|debug",
        "convert code": r"convert this|translate the following|port this|how would this look in|snippet in",
        "unit tests": r"\btests\b|test cases|test suite",
    },
    "lists": {
        "list n things": r"^(list|give me|can you list|name|what are|i need|make a numbered|quickly|help me)",
        "ranking": r"\brank",
        "pros and cons": r"pros and|advantages and disadvantages",
    },
    "rewriting": {
        "change tone": r"formal|professional|casual|stiff|to a friend|text message|everyday english|business",
        "shorten or clarify": r"shorter|concise|unnecessary|filler|under fifteen|clear|ambiguity|confusing",
        "fix grammar": r"grammar|correct|proofread|errors",
        "translate": r"\b(french|spanish|german)\b",
        "paragraph": r"bullet points|summar|tl;dr|half as long|ten-year-old|title|flow",
    },
    "questions": {
        "why": r"\bwhy\b",
        "how": r"\bhow\b",
        "difference": r"difference|different from|compare|mix up|in common",
        "what if": r"what would happen|what if|suppose|imagine",
        "what is": r"^(what is|what does|define|can you explain|give me a one-sentence|explain) ",
    },
    "math": {
        "arithmetic": r"\d ?[-+*/] ?\d|\d% of|percent of|squared|square root|average of|prime|factors",
        "word problem": r"how (much|many|long|far|old|high)|what (is|time)|percentage|probability",
        "unit conversion": r"convert \d|conversion|is how many|how many [a-z ]+ is",
        "puzzle": r"puzzle|teaser|reasoning|\?",
    },
    "structured": {
        "json": r"\bjson\b",
        "table": r"\btable\b",
        "csv": r"\bcsv\b",
        "yaml": r"\byaml\b",
        "numbered plan": r"step-by-step|numbered|steps",
    },
    "extraction": {
        "entities": r"names|dates?\b|places|locations|who is mentioned|every person",
        "sentiment": r"sentiment|review",
        "categorize": r"sort these|classify each|group these|categor|which of these",
        "headline or spam": r"headline|spam|phishing|trust this message",
    },
    "creative": {
        "haiku": r"haiku",
        "limerick or acrostic": r"limerick|acrostic",
        "story": r"story|scene",
        "slogan": r"slogan|tagline",
        "product names": r"names|call",
    },
    "advice": {
        "how-to": r"how do i|how to|best way to|tips on|step-by-step instructions|quick way to",
        "situation": r"what should i do|any advice|my options|fix this|would you suggest|in my place",
    },
    "role": {
        "role-play": r"^(you are|act as|pretend you're|you're|imagine you are) ",
        "answer format": r"sentences?\b|30 words|five|bullet points|style|dialogue|pirate|system",
    },
}


def test_committed_files_match_the_composer() -> None:
    train, heldout = compose()
    assert read_prompts(TRAIN_OUT) == train
    assert read_prompts(HELDOUT_OUT) == heldout


def test_sizes() -> None:
    train, heldout = compose()
    assert 2300 <= len(train) <= 2800
    assert 250 <= len(heldout) <= 350


def test_no_prompt_twice_and_splits_are_disjoint() -> None:
    train, heldout = compose()
    assert len(set(train)) == len(train)
    assert len(set(heldout)) == len(heldout)
    assert not set(train) & set(heldout)


def test_no_prompt_repeats_an_original_prompt() -> None:
    old = {
        line.strip() for path in OLD_PROMPT_FILES for line in path.read_text(encoding="utf-8").splitlines()
    }
    train, heldout = compose()
    assert not {p.strip() for p in train + heldout} & old


def test_every_prompt_is_non_empty_and_not_too_long() -> None:
    train, heldout = compose()
    for prompt in train + heldout:
        assert prompt.strip() and prompt == prompt.strip(), repr(prompt[:80])
        assert len(prompt) <= MAX_CHARS <= 1500, prompt[:80]


def test_families_are_present_in_both_splits() -> None:
    by_family = compose_by_family()
    assert tuple(by_family) == FAMILIES == tuple(KINDS)
    for name, (train, heldout) in by_family.items():
        assert len(train) >= 200, name
        assert len(heldout) >= 20, name
    for name, kinds in KINDS.items():
        train, heldout = by_family[name]
        for kind, pattern in kinds.items():
            regex = re.compile(pattern, re.IGNORECASE)
            assert any(regex.search(p) for p in train), (name, kind)
            assert any(regex.search(p) for p in heldout), (name, kind)


def test_families_are_interleaved() -> None:
    train, heldout = compose()
    family_of = {p: name for name, (t, h) in compose_by_family().items() for p in t + h}
    assert {family_of[p] for p in train[:40]} == set(FAMILIES)
    assert {family_of[p] for p in heldout[:40]} == set(FAMILIES)


def test_heldout_materials_never_occur_in_training_prompts() -> None:
    materials = heldout_materials()
    assert len(materials) >= 100
    train, heldout = compose()
    train_lower = [p.lower() for p in train]
    for parts in materials:
        lowered = [part.lower() for part in parts]
        patterns = [re.compile(r"(?<!\w)" + re.escape(part) + r"(?!\w)") for part in lowered]
        for prompt in train_lower:
            if all(part in prompt for part in lowered):
                assert not all(p.search(prompt) for p in patterns), (parts, prompt[:200])
    # ... and the held-out prompts really are built from them
    heldout_lower = [p.lower() for p in heldout]
    used = [m for m in materials if any(all(part.lower() in p for part in m) for p in heldout_lower)]
    assert len(used) >= len(materials) // 2
