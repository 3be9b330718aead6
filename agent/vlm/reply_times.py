"""Times in model replies: read one, find the spans written in prose, and leave them out.

The system cites only the times it computes (from the clip index); what a model writes about
time is either read by a clear rule (`find_time_spans`, for benchmarks that ask for spans) or
dropped (`without_times`).
"""

import re
from typing import Any

from agent.timefmt import parse_clock

SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})

_UNIT = r"(?:s|sec|secs|second|seconds)\b"
_MIN_UNIT = r"(?:m|min|mins|minute|minutes)\b"
_NUM = r"\d+(?:\.\d+)?"
_CLOCK = r"(?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?"
# One time: a clock (00:12, 1:02:03), "1 min 30 s" / "1m30s", or a number with optional unit.
_TIME = (
    rf"(?:{_CLOCK}|{_NUM}\s*{_MIN_UNIT}(?:\s*(?:and\s*)?{_NUM}\s*{_UNIT})?|{_NUM}(?:\s*{_UNIT})?)"
)
_SPAN_PATTERNS = [
    re.compile(rf"\bfrom\s+(?P<a>{_TIME})\s+(?:to|until|till|through)\s+(?P<b>{_TIME})", re.I),
    re.compile(rf"\bbetween\s+(?P<a>{_TIME})\s+and\s+(?P<b>{_TIME})", re.I),
    re.compile(rf"(?P<a>{_TIME})\s*(?:-|–|—|to)\s*(?P<b>{_TIME})", re.I),
]
_POINT = re.compile(
    rf"\b(?:at|around|about|near|approximately|approx\.?|~)\s*(?:the\s+)?(?:time\s+)?"
    rf"(?P<a>{_TIME})",
    re.I,
)
_HAS_UNIT = re.compile(rf"{_UNIT}|{_MIN_UNIT}|:", re.I)


def parse_time_value(value: Any) -> float | None:
    """Seconds from `12.5`, `"12.5s"`, `"12.5 seconds"`, `"00:12"`, `"1:02:03"`, `"1 min 30 s"`."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    text = re.sub(r"(\d)m(?=\d)", r"\1 min ", str(value).strip().lower())  # 1m30s
    if not text:
        return None
    clock = parse_clock(text)
    if clock is not None:
        return clock
    match = re.fullmatch(
        rf"(?:(?P<m>{_NUM})\s*{_MIN_UNIT})?\s*(?:and\s*)?(?:(?P<s>{_NUM})\s*(?:{_UNIT})?)?", text
    )
    if match and (match.group("m") or match.group("s")):
        return float(match.group("m") or 0) * 60 + float(match.group("s") or 0)
    return None


def find_time_spans(text: str) -> list[tuple[float, float]]:
    """Time spans written in prose: `from 0:12 to 0:15`, `3.5-6 s`, `between 2 and 4 seconds`.

    Bare numbers count as times only when the span carries a unit or a clock (`2 - 3 people`
    is not a span). Single moments (`at 3 seconds`, `around 00:42`) come back as (t, t).
    """
    text = text.translate(SMART_QUOTES)
    spans: list[tuple[int, float, float]] = []
    taken: list[tuple[int, int]] = []
    for pattern in _SPAN_PATTERNS:
        for match in pattern.finditer(text):
            if _overlaps(match.span(), taken):
                continue
            tail = text[match.end() : match.end() + 12]
            if not _HAS_UNIT.search(match.group(0)) and not re.match(rf"\s*{_UNIT}", tail, re.I):
                continue
            unit_tail = re.match(rf"\s*(?:{_UNIT}|{_MIN_UNIT})", tail, re.I)
            a, b = _span_values(match.group("a"), match.group("b"), unit_tail)
            if a is None or b is None or b < a:
                continue
            spans.append((match.start(), a, b))
            taken.append(match.span())
    for match in _POINT.finditer(text):
        if _overlaps(match.span(), taken):
            continue
        raw = match.group("a")
        tail = text[match.end() : match.end() + 12]
        if not _HAS_UNIT.search(raw) and not re.match(rf"\s*{_UNIT}", tail, re.I):
            continue
        value = parse_time_value(raw)
        if value is not None:
            spans.append((match.start(), value, value))
            taken.append(match.span())
    return [(a, b) for _, a, b in sorted(spans)]


# Any way of writing a time or duration: a clock, a number with a time unit, "second 5",
# "t = 3". Broader than `find_time_spans` on purpose: it decides what model text is dropped.
_ANY_TIME = re.compile(
    r"\d+:\d{2}"
    r"|\b\d+(?:\.\d+)?\s*(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b"
    r"|\b(?:second|minute|frame|time|timestamp)s?\s*\d"
    r"|\bt\s*=\s*\d"
    r"|\d+(?:st|nd|rd|th)\s+(?:second|minute)",
    re.I,
)
_CLAUSE_BREAK = re.compile(r"(?<=[.!?])\s+|;\s*")


def mentions_time(text: str) -> bool:
    """Whether the text writes a time or a duration in any form."""
    return bool(_ANY_TIME.search(text.translate(SMART_QUOTES)))


def without_times(text: str) -> str:
    """Model-written text with every sentence or clause that states a time left out.

    The system cites only the times it computes; a time a model writes may be invented ("at
    99 s" in a 30 s video), so it is never passed on. "No, nobody waves; at 0:05 she only
    scratches her head." becomes "No, nobody waves."
    """
    text = " ".join(str(text).split())
    if not mentions_time(text):
        return text
    return " ".join(_sentence(c) for c in clauses(text) if not mentions_time(c))


def _sentence(clause: str) -> str:
    """A kept clause as a sentence of its own: capital first letter, closing punctuation."""
    clause = clause[0].upper() + clause[1:]
    return clause if clause[-1] in ".!?" else clause + "."


def clauses(text: str) -> list[str]:
    """Sentences, and the parts of a sentence between semicolons."""
    parts = _CLAUSE_BREAK.split(" ".join(str(text).split()))
    return [part.strip() for part in parts if part.strip()]


def _span_values(a: str, b: str, unit_tail: re.Match | None) -> tuple[float | None, float | None]:
    """Both ends in seconds; a trailing unit (`3 to 5 minutes`) applies to bare numbers."""
    in_minutes = unit_tail and re.search(_MIN_UNIT, unit_tail.group(0), re.I)
    # "3 to 5 minutes": the unit written once after the second end applies to the first.
    in_minutes = in_minutes or re.fullmatch(rf"{_NUM}\s*{_MIN_UNIT}", b.strip(), re.I)
    scale = 60.0 if in_minutes else 1.0

    def value(raw: str) -> float | None:
        if re.fullmatch(_NUM, raw.strip()):
            return float(raw) * scale
        return parse_time_value(raw)

    return value(a), value(b)


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)
