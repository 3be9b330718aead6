"""Robust reading of model replies: JSON anywhere in the text, then careful text fallbacks.

The rule is *never guess*: a reply is either read into structured data with a clear rule or it
is counted as unparsed and logged (see `record_unparsed`), and the caller gets `None`.
"""

import json
import logging
import re
from collections import Counter
from typing import Any

from agent.events import label_key
from agent.vlm.reply_times import (
    SMART_QUOTES,
    clauses,
    find_time_spans,
    mentions_time,
    parse_time_value,
    without_times,
)

log = logging.getLogger(__name__)

_UNPARSED: Counter[str] = Counter()
_FENCE = re.compile(r"```(?:json|JSON|javascript)?\s*(.*?)```", re.DOTALL)

# --- JSON ------------------------------------------------------------------------------------


def extract_json(text: str) -> dict | None:
    """The first JSON object in `text` (inside code fences, prose, or slightly broken).

    Repairs applied, in order, only when plain parsing fails: smart quotes, Python literals
    (True/None), single-quoted strings, unquoted keys, trailing commas, and a reply cut off by
    the token limit (unclosed strings and brackets are closed). A bare JSON list becomes
    `{"items": [...]}`.
    """
    if not text:
        return None
    text = text.translate(SMART_QUOTES)
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + _balanced_blocks(text)
    truncated = _truncated_tail(text)
    if truncated:
        candidates.append(truncated)
    for candidate in candidates:
        data = _loads_lenient(candidate)
        if isinstance(data, dict):
            return data
        if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
            return {"items": data}
    return None


def _balanced_blocks(text: str) -> list[str]:
    """Every top-level `{...}` / `[...]` block, scanning brackets outside of strings."""
    blocks: list[str] = []
    depth, start, in_string, quote, escape = 0, -1, False, "", False
    for index, char in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == quote:
                in_string = False
            continue
        if char in "\"'" and depth > 0:
            # An apostrophe inside prose words is not a string delimiter.
            if char == "'" and index > 0 and text[index - 1].isalnum():
                continue
            in_string, quote = True, char
        elif char in "{[":
            if depth == 0:
                start = index
            depth += 1
        elif char in "}]" and depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(text[start : index + 1])
    return blocks


def _truncated_tail(text: str) -> str | None:
    """A JSON object that starts but never closes (generation hit max_new_tokens), closed."""
    start = text.find("{")
    if start < 0:
        return None
    tail = text[start:]
    stack: list[str] = []
    in_string, escape = False, False
    for char in tail:
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    if not stack:
        return None
    repaired = tail + ('"' if in_string else "")
    repaired = re.sub(r",\s*$", "", repaired.rstrip())
    repaired = re.sub(
        r'[,{]\s*"[^"]*"\s*:?\s*$', lambda m: m.group(0)[0].replace(",", ""), repaired
    )
    repaired = re.sub(r":\s*$", ": null", repaired)
    return repaired + "".join(reversed(stack))


def _loads_lenient(candidate: str) -> Any:
    for fix in (_identity, _python_literals, _single_quotes, _unquoted_keys, _trailing_commas):
        candidate = fix(candidate)
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
    return None


def _identity(text: str) -> str:
    return text.strip()


def _python_literals(text: str) -> str:
    return re.sub(
        r"\b(True|False|None)\b",
        lambda m: {"True": "true", "False": "false"}.get(m.group(1), "null"),
        text,
    )


def _single_quotes(text: str) -> str:
    if '"' in text:
        return re.sub(r"'([^'\n]*?)'(\s*:)", r'"\1"\2', text)
    return re.sub(r"'([^'\n]*?)'", r'"\1"', text)


def _unquoted_keys(text: str) -> str:
    return re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ ]*?)(\s*:)", r'\1"\2"\3', text)


def _trailing_commas(text: str) -> str:
    return re.sub(r",\s*([}\]])", r"\1", text)


# --- labels ----------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """A label as words ("thumbs_up" -> "thumbs up") for finding it in prose."""
    return label_key(str(text)).replace("_", " ")


def match_label(text: str, labels: list[str]) -> str | None:
    """The one label of `labels` named in `text` (case, `_`/`-`/space insensitive); else None.

    When two or more different labels are named (`happy or sad`), the reply is ambiguous and
    nothing is returned: choosing one would be a guess.
    """
    if not text:
        return None
    normalized = _norm(text)
    exact = [label for label in labels if _norm(label) == normalized.strip(" .!\"'")]
    if len(exact) == 1:
        return exact[0]
    found = [
        label
        for label in labels
        if re.search(rf"(?<![a-z]){re.escape(_norm(label))}(?![a-z])", normalized)
    ]
    # A label that is part of a longer found label ("happy" in "very happy") does not count twice.
    found = [x for x in found if not any(x != y and _norm(x) in _norm(y) for y in found)]
    return found[0] if len(found) == 1 else None


# --- per-task readers ------------------------------------------------------------------------


def parse_describe(text: str) -> dict | None:
    """`{"people": [...], "summary": ...}`; a bare list of people is accepted too."""
    data = extract_json(text)
    if data is None:
        return None
    if "people" not in data and "items" in data:
        data = {"people": data.pop("items"), **data}
    if not isinstance(data.get("people", []), list):
        return None
    return data


def parse_answer(text: str) -> dict | None:
    """`{"answer": str, "moments": [{start_s, end_s, ...}]}`, or a prose answer.

    A reply with JSON must carry a non-empty `answer`; a reply without any JSON is taken as a
    prose answer (`parsed_from: text`) with no moments: times in prose are never read as
    moments, nor as a sign that the behavior is there.
    """
    data = extract_json(text)
    if data is None:
        return parse_answer_prose(text)
    answer = data.get("answer") or data.get("response") or data.get("text")
    if not isinstance(answer, str) or not answer.strip():
        return None
    moments = [_moment(m) for m in _as_list(data.get("moments") or data.get("evidence"))]
    return {**data, "answer": answer.strip(), "moments": [m for m in moments if m]}


def parse_answer_prose(text: str) -> dict | None:
    """The fallback for a prose answer: the text itself, without moments."""
    stripped = text.strip()
    if not stripped or "{" in stripped:
        return None  # empty, or JSON too broken to read: not a prose answer either
    return {"answer": stripped, "parsed_from": "text"}


_YES = {"yes", "yeah", "yep", "true", "correct"}
_NO = {"no", "nope", "false", "nobody", "none", "never", "nothing", "not"}
_NEGATED = re.compile(r"\b(?:no|not|never|without|nobody|none)\b", re.I)


def yes_or_no(text: object) -> bool | None:
    """True / False for an answer that opens with an explicit yes or no; None otherwise."""
    first = re.match(r"\W*([a-z]+)", str(text or "").lower())
    if first is None:
        return None
    word = first.group(1)
    return True if word in _YES else False if word in _NO else None


def says_present(data: object, names: list[str]) -> bool:
    """Whether a parsed answer says the behavior called `names` is there.

    Decided by the model's explicit words only: its `present` flag, else an answer opening
    with yes or no, else a moment it labels with one of `names` (not a negated label). A time
    found in prose is never evidence of presence.
    """
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("present"), bool):
        return data["present"]
    verdict = yes_or_no(data.get("answer"))
    if verdict is not None:
        return verdict
    wanted = [_norm(name) for name in names if name]
    for moment in data.get("moments") or []:
        label = moment.get("label") if isinstance(moment, dict) else None
        if not isinstance(label, str) or _NEGATED.search(label):
            continue
        text = _norm(label)
        if any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text) for w in wanted):
            return True
    return False


def parse_narrative(text: str) -> dict | None:
    """`{"narrative": prose}` from a narrative reply, every clause that states a time left out.

    None (unparsed, counted) when nothing is left: no text, JSON instead of prose, or only
    sentences with times. `dropped` counts the clauses left out.
    """
    stripped = " ".join(text.split())
    if not stripped or extract_json(stripped) is not None:
        return None
    kept = without_times(stripped)
    if not kept:
        return None
    return {"narrative": kept, "dropped": sum(mentions_time(c) for c in clauses(stripped))}


def parse_classify(text: str, labels: list[str]) -> dict | None:
    """`{"label": one of labels, "confidence": 0..1}`; prose counts only if it names one label."""
    data = extract_json(text)
    if data is not None:
        raw = data.get("label") or data.get("class") or data.get("answer")
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        label = match_label(str(raw), labels) if isinstance(raw, str) else None
        if label is None:
            return None
        return {**data, "label": label, "confidence": _confidence(data.get("confidence"))}
    label = match_label(text, labels)
    if label is None:
        return None
    return {"label": label, "confidence": None, "parsed_from": "text"}


def parse_locate(text: str) -> dict | None:
    """`{"spans": [{"start_s", "end_s"}]}` (also a single start/end pair), or prose times."""
    data = extract_json(text)
    if data is not None:
        raw = data.get("spans") or data.get("moments") or data.get("items")
        if raw is None and ("start_s" in data or "start" in data):
            raw = [data]
        spans = [_moment(m) for m in _as_list(raw)]
        spans = [s for s in spans if s]
        if not spans and data.get("found") is not False:
            return None  # neither spans nor an explicit "not found"
        return {**data, "spans": spans}
    spans = find_time_spans(text)
    if not spans:
        return None
    return {"spans": [{"start_s": a, "end_s": b} for a, b in spans], "parsed_from": "text"}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _moment(item: Any) -> dict | None:
    """A dict with numeric start_s/end_s from the many ways models spell them."""
    if isinstance(item, list | tuple) and len(item) == 2:
        item = {"start_s": item[0], "end_s": item[1]}
    if isinstance(item, str):
        spans = find_time_spans(item)
        return {"start_s": spans[0][0], "end_s": spans[0][1]} if len(spans) == 1 else None
    if not isinstance(item, dict):
        return None
    start = _first(item, ("start_s", "start", "from", "begin", "start_time", "time", "t"))
    end = _first(item, ("end_s", "end", "to", "until", "end_time"))
    if start is None and isinstance(item.get("span"), str | list):
        inner = _moment(item["span"])
        rest = {k: v for k, v in item.items() if k != "span"}
        return {**rest, **inner} if inner else None
    start_s = parse_time_value(start)
    end_s = parse_time_value(end) if end is not None else start_s
    if start_s is None or end_s is None or end_s < start_s:
        return None
    rest = {k: v for k, v in item.items() if k not in {"start_s", "end_s"}}
    return {**rest, "start_s": start_s, "end_s": end_s}


def _first(item: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def _confidence(value: Any) -> float | None:
    try:
        number = float(str(value).rstrip("%")) if value is not None else None
    except ValueError:
        return None
    if number is None:
        return None
    if isinstance(value, str) and value.endswith("%") or number > 1.0:
        number /= 100.0
    return min(1.0, max(0.0, number))


# --- bookkeeping ---------------------------------------------------------------------------


def record_unparsed(task: str, text: str) -> None:
    """Count an unreadable reply and log it (never guess what it meant)."""
    _UNPARSED[task] += 1
    preview = text.strip().replace("\n", " ")
    log.warning(
        "unparsed %s reply #%d (kept as text, no structured data): %r",
        task,
        _UNPARSED[task],
        preview[:300] + ("…" if len(preview) > 300 else ""),
    )


def unparsed_counts() -> dict[str, int]:
    """How many replies of each task could not be parsed in this process."""
    return dict(_UNPARSED)
