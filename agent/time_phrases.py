"""The one grammar of time phrases, for questions and model replies alike.

"between 1 and 2 minutes", "from 1:05 to 1:30", "at 00:42", "around the 3-minute mark",
"after two minutes", "the first 10 s", "in the last thirty seconds", "the second half": each is
found by the same rules wherever it is written. The planner turns the first phrase of a
question into a window (`agent.planning.times`); the reply reader lists the spans a model wrote
(`agent.vlm.reply_times`). A unit written once applies to both ends of a span ("between 1 and
2 minutes" is 60–120 s).
"""

import re
from dataclasses import dataclass
from typing import Any, Literal

from agent.timefmt import parse_clock

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
_UNIT_WORDS = {
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
}
_UNIT_OF = {word: unit for unit, words in _UNIT_WORDS.items() for word in words}
_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90}
NUMBER_WORDS: dict[str, float] = {word: float(n) for n, word in enumerate(_ONES)}
NUMBER_WORDS |= {word: float(n) for word, n in _TENS.items()}
NUMBER_WORDS |= {"a": 1.0, "an": 1.0, "half a": 0.5, "half an": 0.5, "half": 0.5}

_WORD = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_TENS_WORD = "|".join(_TENS)
_ONE_WORD = "|".join(_ONES[1:10])
# A count: digits, or words ("thirty", "twenty-five", "a", "half a").
NUM = rf"(?:\d+(?:\.\d+)?|(?:{_TENS_WORD})[\s-](?:{_ONE_WORD})\b|(?:{_WORD})\b)"
_UNIT_WORD = "|".join(sorted(_UNIT_OF, key=len, reverse=True))
UNIT = rf"(?:{_UNIT_WORD})\b"
CLOCK = r"(?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?"
# One time: a clock, "1 min 30 s", or a count with a unit ("10 s", "3-minute"), else a count.
TIME = rf"(?:{CLOCK}|{NUM}[\s-]*{UNIT}(?:\s*(?:and\s*)?\d+(?:\.\d+)?\s*{UNIT})?|{NUM})"
# Written with digits: "20 - 22 seconds", "1:05–1:09" (a span of words needs "between"/"from").
_DIGIT_TIME = rf"(?:{CLOCK}|\d+(?:\.\d+)?(?:\s*{UNIT})?)"
_SPAN_WORDS = r"(?:to|until|till|through|and|-|–|—)"
_SPANS = [
    re.compile(rf"\b(?:between|from)\s+(?P<a>{TIME})\s*{_SPAN_WORDS}\s*(?P<b>{TIME})", re.I),
    re.compile(rf"(?<![\w:.])(?P<a>{_DIGIT_TIME})\s*(?:-|–|—|to)\s*(?P<b>{_DIGIT_TIME})", re.I),
]
_POINT = re.compile(
    r"\b(?:at|around|about|near|approximately|approx\.?|roughly|by)\s+(?:the\s+)?"
    rf"(?:time\s+)?(?P<a>{TIME})(?:\s+mark\b)?"
    rf"|~\s*(?P<tilde>{TIME})",
    re.I,
)
_RELATIVE = re.compile(
    rf"\b(?P<rel>after|before|since|until|past)\s+(?:the\s+)?(?P<a>{TIME})", re.I
)
_EDGE = re.compile(
    r"\b(?:(?:in|during|within|over)\s+)?the\s+(?P<edge>first|last|final|opening|closing)\s+"
    rf"(?:(?P<count>{NUM})[\s-]*)?(?P<unit>{UNIT}|half)",
    re.I,
)
_HALF = re.compile(r"\b(?:(?:in|during)\s+)?the\s+(?P<edge>first|second)\s+half\b", re.I)
_TRAILING_UNIT = re.compile(rf"\s*(?P<unit>{UNIT})", re.I)
_HAS_UNIT = re.compile(rf":|{UNIT}", re.I)

Kind = Literal["span", "point", "after", "before", "first", "last"]


@dataclass(frozen=True)
class TimePhrase:
    """One time phrase found in a text: what it says, in seconds, and where it was written.

    span: `start_s`–`end_s`; point: `start_s` (= `end_s`); after / before: `start_s`;
    first / last: `length_s` of the opening or closing stretch, or `half` for a half.
    """

    kind: Kind
    start: int
    end: int
    start_s: float | None = None
    end_s: float | None = None
    length_s: float | None = None
    half: bool = False
    # The phrase wrote a unit or a clock (bare numbers in prose are often not times).
    has_unit: bool = True


def parse_number(text: str) -> float | None:
    """`12.5` → 12.5, `thirty` → 30, `twenty-five` → 25, `an` → 1; None otherwise."""
    text = " ".join(text.strip().lower().replace("-", " ").split())
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if text in NUMBER_WORDS:
        return NUMBER_WORDS[text]
    tens, _, ones = text.partition(" ")
    if tens in _TENS and ones in _ONES[1:10]:
        return _TENS[tens] + float(_ONES.index(ones))
    return None


def parse_time_value(value: Any, bare_unit_s: float = 1.0) -> float | None:
    """Seconds from `12.5`, `"12.5 s"`, `"00:12"`, `"1:02:03"`, `"1 min 30 s"`, `"1m30s"`,
    `"two minutes"`, `"3-minute"`; a bare count is in `bare_unit_s` (seconds by default)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    text = re.sub(r"(\d)m(?=\d)", r"\1 min ", str(value).strip().lower())  # 1m30s
    if not text:
        return None
    if ":" in text:
        return parse_clock(text)
    match = re.fullmatch(
        rf"(?P<n>{NUM})(?:[\s-]*(?P<u>{UNIT}))?(?:\s*(?:and\s*)?(?P<n2>\d+(?:\.\d+)?)\s*"
        rf"(?P<u2>{UNIT}))?",
        text,
        re.I,
    )
    if not match:
        return None
    number = parse_number(match["n"])
    if number is None:
        return None
    seconds = number * (_unit_s(match["u"]) if match["u"] else bare_unit_s)
    if match["n2"]:
        seconds += float(match["n2"]) * _unit_s(match["u2"])
    return seconds


def _unit_s(word: str) -> float:
    return _UNIT_S[_UNIT_OF[word.lower()]]


def _unit_of(time_text: str) -> float | None:
    """The seconds per unit a time wrote (`2 minutes` → 60), None for a bare count or a clock."""
    match = re.search(rf"(?:{NUM})[\s-]*(?P<u>{UNIT})", time_text, re.I)
    return _unit_s(match["u"]) if match and ":" not in time_text else None


def _span(match: re.Match, text: str) -> TimePhrase | None:
    a_text, b_text = match["a"], match["b"]
    trailing = None if _HAS_UNIT.search(b_text) else _TRAILING_UNIT.match(text, match.end())
    end = trailing.end() if trailing else match.end()
    # A unit written once, after the second end, applies to a bare first end too.
    unit_s = _unit_s(trailing["unit"]) if trailing else _unit_of(b_text) or 1.0
    a_s = parse_time_value(a_text, unit_s if not _HAS_UNIT.search(a_text) else 1.0)
    b_s = parse_time_value(b_text, unit_s)
    if a_s is None or b_s is None:
        return None
    has_unit = bool(_HAS_UNIT.search(match[0]) or trailing)
    start_s, end_s = sorted((a_s, b_s))
    return TimePhrase("span", match.start(), end, start_s, end_s, has_unit=has_unit)


def _point(match: re.Match, text: str) -> TimePhrase | None:
    raw = match["a"] or match["tilde"]
    trailing = None if _HAS_UNIT.search(raw) else _TRAILING_UNIT.match(text, match.end())
    unit_s = _unit_s(trailing["unit"]) if trailing else 1.0
    at_s = parse_time_value(raw, unit_s)
    if at_s is None:
        return None
    end = trailing.end() if trailing else match.end()
    has_unit = bool(_HAS_UNIT.search(raw) or trailing)
    return TimePhrase("point", match.start(), end, at_s, at_s, has_unit=has_unit)


def _relative(match: re.Match, text: str) -> TimePhrase | None:
    time_s = parse_time_value(match["a"])
    if time_s is None:
        return None
    kind: Kind = "after" if match["rel"].lower() in {"after", "since", "past"} else "before"
    has_unit = bool(_HAS_UNIT.search(match["a"]))
    return TimePhrase(kind, match.start(), match.end(), start_s=time_s, has_unit=has_unit)


def _edge(match: re.Match, text: str) -> TimePhrase | None:
    kind: Kind = "first" if match["edge"].lower() in {"first", "opening"} else "last"
    if match["unit"].lower() == "half":
        return TimePhrase(kind, match.start(), match.end(), half=True)
    count = parse_number(match["count"]) if match["count"] else 1.0
    if count is None:
        return None
    length_s = count * _unit_s(match["unit"])
    return TimePhrase(kind, match.start(), match.end(), length_s=length_s)


def _half(match: re.Match, text: str) -> TimePhrase:
    kind: Kind = "first" if match["edge"].lower() == "first" else "last"
    return TimePhrase(kind, match.start(), match.end(), half=True)


def _written_span(match: re.Match, text: str) -> TimePhrase | None:
    """ "20 - 22 s", "1:05 to 1:09": a span only with a unit or a clock ("2 to 3 people" is not)."""
    phrase = _span(match, text)
    return phrase if phrase is not None and phrase.has_unit else None


# Earlier rules win where phrases overlap: "between 1:00 and 2:00" is one span, not a point.
_RULES = [
    (_SPANS[0], _span),
    (_SPANS[1], _written_span),
    (_EDGE, _edge),
    (_HALF, _half),
    (_POINT, _point),
    (_RELATIVE, _relative),
]


def find_time_phrases(text: str) -> list[TimePhrase]:
    """Every time phrase in `text`, in the order written (overlapping matches: the first rule
    that found one wins)."""
    found: list[TimePhrase] = []
    for pattern, read in _RULES:
        for match in pattern.finditer(text):
            if any(match.start() < p.end and p.start < match.end() for p in found):
                continue
            phrase = read(match, text)
            if phrase is not None:
                found.append(phrase)
    return sorted(found, key=lambda p: p.start)
