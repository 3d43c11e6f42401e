"""StopStringMatcher on text deltas, and detokenize_until_stop on the real SmolLM2 tokenizer."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from service.detokenize import IncrementalDetokenizer
from service.stop_strings import StopResult, StopStringMatcher, detokenize_until_stop
from tests.tokenizer_fixtures import HfTokenizer, smollm2_tokenizer

SEED = 7


def run(stops: Sequence[str], deltas: Sequence[str]) -> tuple[list[str], str | None, str]:
    """(text released by each feed, matched stop, text released by flush)."""
    matcher = StopStringMatcher(stops)
    released: list[str] = []
    for delta in deltas:
        result = matcher.feed(delta)
        released.append(result.text)
        if result.matched is not None:
            return released, result.matched, matcher.flush()
    return released, None, matcher.flush()


def test_match_inside_one_delta() -> None:
    assert run(["STOP"], ["Hello STOP world"]) == (["Hello "], "STOP", "")


def test_match_across_deltas() -> None:
    assert run(["</answer>"], ["The answer is 4.</an", "sw", "er> and more"]) == (
        ["The answer is 4.", "", ""],
        "</answer>",
        "",
    )


def test_match_at_the_very_start() -> None:
    assert run(["Hi"], ["Hi there"]) == ([""], "Hi", "")
    assert run(["Hi"], ["H", "i there"]) == (["", ""], "Hi", "")


def test_overlapping_prefix_is_not_lost() -> None:
    """'a' is held as a possible start of 'ab'; the next 'a' shows it was not, and it goes out."""
    assert run(["ab"], ["aab"]) == (["a"], "ab", "")
    assert run(["ab"], ["a", "a", "b"]) == (["", "a", ""], "ab", "")
    assert run(["aab"], ["a", "a", "a", "b"]) == (["", "", "a", ""], "aab", "")


def test_no_match_then_flush_releases_the_held_text() -> None:
    assert run(["STOP"], ["all good ST"]) == (["all good "], None, "ST")
    assert run(["STOP"], ["plain"]) == (["plain"], None, "")


def test_held_text_is_released_once_it_diverges() -> None:
    matcher = StopStringMatcher(["abc"])
    assert matcher.feed("xab") == StopResult("x")
    assert matcher.held == "ab"
    assert matcher.feed("d") == StopResult("abd")
    assert matcher.held == ""


def test_the_stop_that_ends_first_wins() -> None:
    # "bc" is complete before "abcd" could be, so it wins even though "abcd" starts earlier.
    assert run(["abcd", "bc"], ["xabcd"]) == (["xa"], "bc", "")
    assert run(["abcd", "bc"], ["xab", "cd"]) == (["x", "a"], "bc", "")


def test_of_stops_ending_together_the_longest_wins() -> None:
    assert run(["c", "bc"], ["abc"]) == (["a"], "bc", "")
    assert run(["c", "bc"], ["ab", "c"]) == (["a", ""], "bc", "")


def test_several_stops() -> None:
    stops = ["\n\n", "User:", "###"]
    assert run(stops, ["Sure. ", "Here it is", "\n", "#", "##"]) == (
        ["Sure. ", "Here it is", "", "\n", ""],
        "###",
        "",
    )


def test_unicode_stops() -> None:
    assert run(["終わり"], ["これで", "終", "わり", "です"]) == (["これで", "", ""], "終わり", "")
    assert run(["🛑"], ["go go 🚀", "🛑 no"]) == (["go go 🚀", ""], "🛑", "")
    assert run(["é"], ["cafe", " café"]) == (["cafe", " caf"], "é", "")


def test_after_a_match_nothing_more_comes_out() -> None:
    matcher = StopStringMatcher(["x"])
    assert matcher.feed("axb") == StopResult("a", "x")
    assert matcher.feed("more") == StopResult("", "x")
    assert matcher.flush() == ""


def test_empty_stop_strings_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        StopStringMatcher([])
    with pytest.raises(ValueError, match="non-empty"):
        StopStringMatcher(["ok", ""])


def reference(stops: Sequence[str], text: str) -> tuple[str, str | None]:
    """Text before the stop that completes first (longest on ties), by brute force."""
    for end in range(len(text) + 1):
        ending = [stop for stop in stops if text[:end].endswith(stop)]
        if ending:
            stop = max(ending, key=len)
            return text[: end - len(stop)], stop
    return text, None


def test_any_split_gives_the_same_outcome_and_holds_little() -> None:
    rng = random.Random(SEED)
    for _ in range(400):
        alphabet = rng.choice(["ab", "abc", "aé🙂", "xy\n"])
        stops = ["".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 6))))
        deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        matcher = StopStringMatcher(stops)
        released: list[str] = []
        matched = None
        for delta in deltas:
            result = matcher.feed(delta)
            released.append(result.text)
            assert len(matcher.held) <= max(map(len, stops)) - 1
            if result.matched is not None:
                matched = result.matched
                break
        released.append(matcher.flush())
        assert ("".join(released), matched) == reference(stops, text), (stops, deltas)


@pytest.fixture(scope="module", params=["decode-window", "byte-pieces"])
def tokenizer(request: pytest.FixtureRequest) -> HfTokenizer:
    return smollm2_tokenizer(byte_level=request.param == "byte-pieces")


def test_detokenize_until_stop_names_the_token_that_completed_the_stop(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode("The capital is Paris.\nUser: and Rome?", add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    matcher = StopStringMatcher(["\nUser:"])
    steps = [detokenize_until_stop(detok, matcher, ids[start : start + 4]) for start in (0, 4)]
    text = "".join(step.text for step in steps)
    assert text == "The capital is Paris."
    assert steps[0].matched is None and steps[0].consumed == 4
    assert steps[1].matched == "\nUser:"
    kept = ids[: 4 + steps[1].consumed]
    assert tokenizer.decode(kept).endswith("\nUser:")
    assert not tokenizer.decode(kept[:-1]).endswith("\nUser:")


def test_detokenize_until_stop_with_a_stop_inside_multi_byte_text(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode("答案是😀。結束吧 more", add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    matcher = StopStringMatcher(["結束"])
    step = detokenize_until_stop(detok, matcher, ids)
    assert (step.text, step.matched) == ("答案是😀。", "結束")
    assert tokenizer.decode(ids[: step.consumed]).endswith("結束")
    assert "結束" not in tokenizer.decode(ids[: step.consumed - 1])


def test_detokenize_until_stop_without_a_match_then_flush(tokenizer: HfTokenizer) -> None:
    ids = tokenizer.encode("No stop here, just 🚀 and END", add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer)
    matcher = StopStringMatcher(["ENDING"])
    step = detokenize_until_stop(detok, matcher, ids)
    assert (step.consumed, step.matched) == (len(ids), None)
    assert step.text + matcher.feed(detok.flush()).text + matcher.flush() == tokenizer.decode(ids)
