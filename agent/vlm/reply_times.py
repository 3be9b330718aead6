"""Times in model replies: read one, find the spans written in prose, and leave them out.

The system cites only the times it computes (from the clip index); what a model writes about
time is either read by the one time grammar (`agent.time_phrases`, through `find_time_spans`,
for benchmarks that ask for spans) or dropped (`without_times`).
"""

import re
from typing import Any

from agent import time_phrases

SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def parse_time_value(value: Any) -> float | None:
    """Seconds from `12.5`, `"12.5s"`, `"12.5 seconds"`, `"00:12"`, `"1:02:03"`, `"1 min 30 s"`."""
    return time_phrases.parse_time_value(value)


def find_time_spans(text: str) -> list[tuple[float, float]]:
    """Time spans written in prose: `from 0:12 to 0:15`, `3.5-6 s`, `between 2 and 4 seconds`.

    Bare numbers count as times only when the span carries a unit or a clock (`2 - 3 people`
    is not a span). Single moments (`at 3 seconds`, `around 00:42`) come back as (t, t).
    """
    phrases = time_phrases.find_time_phrases(text.translate(SMART_QUOTES))
    return [
        (float(p.start_s), float(p.end_s))
        for p in phrases
        if p.kind in ("span", "point") and p.has_unit and p.start_s is not None
    ]


# Any way of writing a time or duration: a clock, a number with a time unit, "second 5",
# "t = 3". Broader than `find_time_spans` on purpose: it decides what model text is dropped.
_ANY_TIME = re.compile(
    r"\d+:\d{2}"
    r"|\b\w*_s\"?\s*[:=]\s*\d"  # a JSON time field: "start_s": 3.0
    r"|\b\d+(?:\.\d+)?\s*(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b"
    r"|\b(?:second|minute|frame|time|timestamp)s?\s*\d"
    r"|\bt\s*=\s*\d"
    r"|\d+(?:st|nd|rd|th)\s+(?:second|minute)",
    re.I,
)
_CLAUSE_BREAK = re.compile(r"(?<=[.!?])\s+|;\s*")


def mentions_time(text: str) -> bool:
    """Whether the text writes a time or a duration in any form (digits or words: "after
    two minutes")."""
    text = text.translate(SMART_QUOTES)
    if _ANY_TIME.search(text):
        return True
    return any(p.has_unit for p in time_phrases.find_time_phrases(text))


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


class TimeFreeStream:
    """Streamed model text shown as it comes, with every clause that states a time left out.

    Pieces are held until their clause ends (a sentence end or a semicolon), so a time split
    across pieces ("at 0:" + "05") is never shown; `flush` hands out what is left at the end.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        """What can be shown now: the finished clauses of the text so far, without times."""
        self._pending += str(piece)
        ends = [m.end() for m in _CLAUSE_END.finditer(self._pending)]
        if not ends:
            return ""
        done, self._pending = self._pending[: ends[-1]], self._pending[ends[-1] :]
        return _shown(done)

    def flush(self) -> str:
        """The rest of the text, once the model has finished."""
        rest, self._pending = self._pending, ""
        return _shown(rest)


# A clause ends at sentence punctuation or a semicolon followed by a space or a line break.
_CLAUSE_END = re.compile(r"[.!?;](?=\s)|\n")


def _shown(text: str) -> str:
    kept = without_times(text)
    return kept + " " if kept else ""
