"""Reading a model's benchmark answer strictly: a label, an option letter, a time span.

An answer is never guessed: anything that is not read by one of these rules is None (unparsed).
"""

import re

import numpy as np

OPTION_LETTERS = "ABCDEFGHIJ"
# A bare letter ("B", "(B)", "B."), a letter then punctuation ("(C) waving", "C. waving"), or
# "answer is C": upper-case only, so "A man is waving" or "the answer is a dog" are not letters.
_LETTER = re.compile(r"^\(?([A-J])\)?[.:]?$|^\(?([A-J])(?:\)|[.:])\s*\S")
_LETTER_AFTER = re.compile(
    r"\b(?i:answer|option)(?:\s+(?i:is))?\s*[:=]?\s*\(?([A-J])\)?(?=[\s.,;:)]|$)"
)


def parse_label(data: dict | None, text: str, labels: list[str]) -> str | None:
    """A task label from the model's JSON (`label`) or a bare one-word answer; else None."""
    candidates = []
    if isinstance(data, dict):
        candidates += [data.get(key) for key in ("label", "class", "emotion", "gesture", "answer")]
    candidates.append(text)
    by_lower = {label.lower(): label for label in labels}
    for candidate in candidates:
        if isinstance(candidate, str):
            cleaned = candidate.strip().strip(".\"'` ").lower().replace(" ", "_")
            if cleaned in by_lower:
                return by_lower[cleaned]
    return None


def parse_option(data: dict | None, text: str, options: list[str]) -> int | None:
    """The chosen option's index from a letter (`B`, `(B)`, `Answer: B`) or the exact option
    text; None for anything else."""
    candidates = [data.get("answer")] if isinstance(data, dict) else []
    candidates.append(text)
    for candidate in candidates:
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate if 0 <= candidate < len(options) else None
        if not isinstance(candidate, str):
            continue
        stripped = candidate.strip()
        match = _LETTER.match(stripped) or _LETTER_AFTER.search(stripped)
        letter = next((group for group in match.groups() if group), None) if match else None
        if letter and OPTION_LETTERS.index(letter) < len(options):
            return OPTION_LETTERS.index(letter)
        lowered = [o.strip().lower() for o in options]
        if stripped.strip(".").lower() in lowered:
            return lowered.index(stripped.strip(".").lower())
    return None


def parse_span(data: dict | None, text: str, duration_s: float) -> list[float] | None:
    """The top-1 [start_s, end_s] from the model's JSON, clamped to the video.

    Reads `spans[0]` (the locate prompt's shape), else start_s/end_s, start/end or `span`.
    An explicit "not found" (`found: false` or no spans) is a parsed answer with no span: `[]`,
    which scores IoU 0. None (unparsed) when the data is absent or the times are not numbers.
    """
    if not isinstance(data, dict):
        return None
    spans = data.get("spans", data.get("moments"))
    if data.get("found") is False or spans == []:
        return []
    if isinstance(spans, list) and isinstance(spans[0], dict):
        data = spans[0]
    if isinstance(data.get("span"), list) and len(data["span"]) == 2:
        start, end = data["span"]
    else:
        start = data.get("start_s", data.get("start"))
        end = data.get("end_s", data.get("end"))
    start_s, end_s = finite_float(start), finite_float(end)
    if start_s is None or end_s is None:
        return None
    start_s, end_s = sorted((start_s, end_s))
    if duration_s > 0:
        start_s, end_s = max(0.0, min(start_s, duration_s)), max(0.0, min(end_s, duration_s))
    return [start_s, end_s] if end_s > start_s else None


def finite_float(value: object) -> float | None:
    """A finite number from the value, else None."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if np.isfinite(result) else None
