"""Time phrases in questions: "between 1:00 and 2:00", "the last minute", "at 2:30"."""

import re

from agent.timefmt import parse_clock

# Half-width of the window around a point in time ("at 2:30").
POINT_WINDOW_HALF_S = 2.5

_UNIT_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0}
_UNIT_S["hour"] = 3600.0
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "a": 1, "an": 1}
_TIME = (
    r"(?:\d+:\d{1,2}(?::\d{1,2})?(?:\.\d+)?"
    r"|(?:\d+(?:\.\d+)?|one|two|three|four|five|ten|an?)\s*"
    r"(?:s|secs?|seconds?|min|mins|minutes?|h|hours?)\b"
    r"|\d+(?:\.\d+)?(?=\s*(?:and|to|until|till|-|–|\?|$|,)))"
)
_BETWEEN = re.compile(
    rf"\b(?:between|from)\s+({_TIME})\s*(?:and|to|until|till|-|–)\s*({_TIME})", re.I
)
_AT = re.compile(rf"\b(?:at|around|near|by)\s+(?:the\s+)?({_TIME})(?:\s+mark)?", re.I)
_AFTER_TIME = re.compile(rf"\b(after|before|since|until)\s+({_TIME})", re.I)
_FIRST_LAST_SPAN = re.compile(
    r"\b(?:in|during|within|over)?\s*the\s+(first|last|final|opening|closing)\s+"
    r"(?:(\d+(?:\.\d+)?|one|two|three|four|five|ten)\s+)?"
    r"(seconds?|minutes?|hours?|half)\b",
    re.I,
)
_SECOND_HALF = re.compile(r"\b(?:in|during)?\s*the\s+second\s+half\b", re.I)


def parse_duration(text: str) -> float | None:
    """`2:30` → 150, `10 seconds` → 10, `1.5 min` → 90, `an hour` → 3600; None otherwise."""
    text = text.strip().lower()
    if ":" in text:
        return parse_clock(text)
    match = re.fullmatch(r"(\d+(?:\.\d+)?|one|two|three|four|five|ten|an?)\s*([a-z]*)", text)
    if not match:
        return None
    number_text, unit_text = match.groups()
    number = float(_NUMBER_WORDS.get(number_text, 0) or number_text)
    if not unit_text:
        return number
    unit = unit_text.rstrip("s") or "s"
    unit = {"sec": "sec", "mins": "min"}.get(unit, unit)
    return number * _UNIT_S[unit] if unit in _UNIT_S else None


def _span_length_s(count_text: str | None, unit_text: str) -> float:
    count = 1.0 if not count_text else float(_NUMBER_WORDS.get(count_text, 0) or count_text)
    return count * _UNIT_S[unit_text.lower().rstrip("s")]


def parse_time_window(
    question: str, duration_s: float | None = None
) -> tuple[float | None, float | None, float | None, str]:
    """(start_s, end_s, at_s, question without the time phrase) from the question's words.

    Relative spans ("the last minute", "the second half") need the video's duration; without
    it they are left open.
    """
    if match := _BETWEEN.search(question):
        first, second = parse_duration(match.group(1)), parse_duration(match.group(2))
        if first is not None and second is not None:
            start_s, end_s = sorted((first, second))
            return start_s, end_s, None, cut_phrase(question, match)
    if match := _FIRST_LAST_SPAN.search(question):
        which, count_text, unit_text = match.groups()
        which = "first" if which.lower() in {"first", "opening"} else "last"
        if unit_text.lower() == "half":
            if duration_s is None:
                return None, None, None, cut_phrase(question, match)
            half = duration_s / 2
            span = (0.0, half) if which == "first" else (half, duration_s)
            return span[0], span[1], None, cut_phrase(question, match)
        length_s = _span_length_s(count_text, unit_text)
        if which == "first":
            return 0.0, length_s, None, cut_phrase(question, match)
        if duration_s is None:
            return None, None, None, cut_phrase(question, match)
        return max(0.0, duration_s - length_s), duration_s, None, cut_phrase(question, match)
    if (match := _SECOND_HALF.search(question)) and duration_s is not None:
        return duration_s / 2, duration_s, None, cut_phrase(question, match)
    if match := _AT.search(question):
        at_s = parse_duration(match.group(1))
        if at_s is not None:
            start_s = max(0.0, at_s - POINT_WINDOW_HALF_S)
            return start_s, at_s + POINT_WINDOW_HALF_S, at_s, cut_phrase(question, match)
    if match := _AFTER_TIME.search(question):
        relation, time_text = match.groups()
        time_s = parse_duration(time_text)
        if time_s is not None:
            if relation.lower() in {"after", "since"}:
                return time_s, None, None, cut_phrase(question, match)
            return 0.0, time_s, None, cut_phrase(question, match)
    return None, None, None, question


def cut_phrase(text: str, match: re.Match) -> str:
    """`text` without the phrase `match` found in it."""
    return (text[: match.start()] + " " + text[match.end() :]).strip()
