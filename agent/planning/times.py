"""The window a question's time phrase names: "between 1:00 and 2:00", "the last minute", "at
2:30" (the phrases are read by the one grammar, `agent.time_phrases`)."""

import re

from agent.time_phrases import TimePhrase, find_time_phrases, parse_time_value

# Half-width of the window around a point in time ("at 2:30").
POINT_WINDOW_HALF_S = 2.5
# Which phrase names the window when a question writes several: a span, then a stretch at an
# edge of the video, then a point, then a bound ("after 0:30").
_PRIORITY = {"span": 0, "first": 1, "last": 1, "point": 2, "after": 3, "before": 3}
# A bare number is a time only where nothing else can follow it ("at 5?"; not "at 5 people").
_ENDS_THERE = re.compile(r"\s*(?:[?.,!;]|$)")


def parse_duration(text: str) -> float | None:
    """`2:30` → 150, `10 seconds` → 10, `1.5 min` → 90, `an hour` → 3600; None otherwise."""
    return parse_time_value(text)


def parse_time_window(
    question: str, duration_s: float | None = None
) -> tuple[float | None, float | None, float | None, str]:
    """(start_s, end_s, at_s, question without the time phrase) from the question's words.

    Relative spans ("the last minute", "the second half") need the video's duration; without
    it they are left open.
    """
    phrases = [p for p in find_time_phrases(question) if _is_time(p, question)]
    if not phrases:
        return None, None, None, question
    phrase = min(phrases, key=lambda p: _PRIORITY[p.kind])
    rest = cut_span(question, phrase.start, phrase.end)
    start_s, end_s, at_s = _window(phrase, duration_s)
    return start_s, end_s, at_s, rest


def _is_time(phrase: TimePhrase, question: str) -> bool:
    if phrase.has_unit or phrase.kind in ("span", "first", "last"):
        return True
    return bool(_ENDS_THERE.match(question, phrase.end))


def _window(
    phrase: TimePhrase, duration_s: float | None
) -> tuple[float | None, float | None, float | None]:
    if phrase.kind == "span":
        return phrase.start_s, phrase.end_s, None
    if phrase.kind == "point":
        at_s = float(phrase.start_s or 0.0)
        return max(0.0, at_s - POINT_WINDOW_HALF_S), at_s + POINT_WINDOW_HALF_S, at_s
    if phrase.kind == "after":
        return phrase.start_s, None, None
    if phrase.kind == "before":
        return 0.0, phrase.start_s, None
    if phrase.half:
        if duration_s is None:
            return None, None, None
        half = duration_s / 2
        return (0.0, half, None) if phrase.kind == "first" else (half, duration_s, None)
    length_s = float(phrase.length_s or 0.0)
    if phrase.kind == "first":
        return 0.0, length_s, None
    if duration_s is None:
        return None, None, None
    return max(0.0, duration_s - length_s), duration_s, None


def cut_phrase(text: str, match: re.Match) -> str:
    """`text` without the phrase `match` found in it."""
    return cut_span(text, match.start(), match.end())


def cut_span(text: str, start: int, end: int) -> str:
    """`text` without the characters from `start` to `end`."""
    return (text[:start] + " " + text[end:]).strip()
