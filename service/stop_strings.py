"""Stop strings: end a generation's text where any of the caller's strings appears.

``StopStringMatcher`` consumes text deltas (from ``IncrementalDetokenizer``)
and says what is safe to send. Text that could still be the beginning of a
stop string is held back (at most ``max(len(stop)) - 1`` characters) until
the next delta shows whether it is; once a stop string is complete, the text
ends right before it, and neither it nor anything after it is sent.

Which stop matches: the one completed first, that is the one whose end comes
earliest in the text; of several ending at the same character, the longest
(it starts earliest). This is what a generation that stops as soon as some
stop string is complete sees, so the outcome (text and ``matched``) is the
same however the text is split into deltas. Matching is by code point, with no
Unicode normalization.

Mapping a match to tokens: the service must report the output token ids up
to the one that completed the stop. When stop strings are present, feed the
ids of a multi-token engine output to the detokenizer one at a time and each
resulting piece to the matcher; the token whose piece completes the match is
the last one kept. ``detokenize_until_stop`` does exactly that::

    detok = IncrementalDetokenizer(tokenizer, prompt_ids)
    matcher = StopStringMatcher(stops)
    for output in engine_outputs:
        step = detokenize_until_stop(detok, matcher, output.token_ids)
        send(output.token_ids[: step.consumed], step.text)
        if step.matched is not None:
            break  # cancel the engine request; finish with the stop string
    else:
        last = matcher.feed(detok.flush())  # last.matched: a stop ending in held-back text
        send((), last.text + matcher.flush())

Without stop strings, push a whole multi-token output at once (cheaper).
A token counts as completing the stop when its piece of text does; if the
detokenizer held an incomplete character back, that may be a token or two after
the one whose bytes finished the stop string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.detokenize import IncrementalDetokenizer


@dataclass(frozen=True, slots=True)
class StopResult:
    """What one ``feed`` releases."""

    text: str
    """Safe to send now."""
    matched: str | None = None
    """The stop string that matched, if one did; ``text`` then ends right before it."""


class StopStringMatcher:
    """Finds the first of several stop strings in a stream of text deltas.

    After a match the matcher is finished: ``feed`` returns empty text with the
    same ``matched`` and ``flush`` returns ``""``.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        if not stops or not all(stops):
            raise ValueError("stop strings must be a non-empty list of non-empty strings")
        self._stops = tuple(dict.fromkeys(stops))
        self._max_hold = max(len(stop) for stop in self._stops) - 1
        self._prefixes = frozenset(stop[:end] for stop in self._stops for end in range(1, len(stop)))
        self._held = ""
        self._matched: str | None = None

    @property
    def held(self) -> str:
        """Text held back because it may begin a stop string (at most ``max(len(stop)) - 1`` chars)."""
        return self._held

    def feed(self, text: str) -> StopResult:
        """Consume the next text delta; returns what is now safe to send and any match."""
        if self._matched is not None:
            return StopResult("", self._matched)
        window = self._held + text
        match = self._first_match(window)
        if match is not None:
            start, stop = match
            self._held = ""
            self._matched = stop
            return StopResult(window[:start], stop)
        keep = self._longest_prefix_suffix(window)
        self._held = window[len(window) - keep :]
        return StopResult(window[: len(window) - keep])

    def flush(self) -> str:
        """The held-back text, at the end of a generation that matched no stop string."""
        held, self._held = self._held, ""
        return held

    def _first_match(self, window: str) -> tuple[int, str] | None:
        """(start, stop) of the match that ends first; the longest among those ending together."""
        best: tuple[int, int, str] | None = None  # (end, -length, stop) orders as documented
        for stop in self._stops:
            start = window.find(stop)
            if start < 0:
                continue
            candidate = (start + len(stop), -len(stop), stop)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            return None
        end, _, stop = best
        return end - len(stop), stop

    def _longest_prefix_suffix(self, window: str) -> int:
        """Length of the longest end of ``window`` that is a proper beginning of some stop."""
        for length in range(min(len(window), self._max_hold), 0, -1):
            if window[len(window) - length :] in self._prefixes:
                return length
        return 0


@dataclass(frozen=True, slots=True)
class TokenStep:
    """What ``detokenize_until_stop`` made of one engine output's token ids."""

    text: str
    """Safe to send now."""
    consumed: int
    """How many of the ids to report: all of them, or up to and including the one completing a stop."""
    matched: str | None
    """The stop string that matched, if one did."""


def detokenize_until_stop(
    detokenizer: IncrementalDetokenizer, matcher: StopStringMatcher, token_ids: Sequence[int]
) -> TokenStep:
    """Push ``token_ids`` one at a time, stopping at the token whose text completes a stop string.

    Ids after that token are not pushed; the generation is over.
    """
    pieces: list[str] = []
    for index, token in enumerate(token_ids):
        result = matcher.feed(detokenizer.push((token,)))
        pieces.append(result.text)
        if result.matched is not None:
            return TokenStep("".join(pieces), index + 1, result.matched)
    return TokenStep("".join(pieces), len(token_ids), None)
