"""Question understanding without a model: type, target classes, time constraints, subject.

`plan_question` turns a plain-language question into a `Plan` by rules (regular expressions for
times and question words, knowledge-base matching for behaviors). A VLM may refine the plan as
JSON (`refine_plan`); whatever it returns is validated against the same schema, and on any
failure the rule-based plan stands.
"""

import json
import logging
import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.context import Context
from agent.state import Kind
from agent.timefmt import parse_clock

log = logging.getLogger(__name__)

QuestionType = Literal["when", "how_many", "what", "describe", "compare", "yes_no"]
FollowUp = Literal["after_that", "before_that", "duration"]
Occurrence = Literal["first", "last", "all"]
KINDS: tuple[Kind, ...] = ("emotion", "gesture", "action")

# Other classes are kept only when they tie with the best one: "thumbs up" must not pull in
# thumbs_down (0.91 by embedding); "happy or sad" is split and matched part by part instead.
TIE_MARGIN = 0.01
# Half-width of the window around a point in time ("at 2:30").
POINT_WINDOW_HALF_S = 2.5


class Subject(BaseModel):
    """Whom the question is about, when it singles one person out ("the man on the left")."""

    model_config = ConfigDict(extra="forbid")

    text: str
    side: Literal["left", "right", "center"] | None = None


class Anchor(BaseModel):
    """A window defined by another behavior ("after she sits down"): resolved on detections."""

    model_config = ConfigDict(extra="forbid")

    relation: Literal["after", "before"]
    target: str | None = None
    text: str


class PhraseMatch(BaseModel):
    """How the question's words for a behavior matched the knowledge base.

    `class_id` is the class they were mapped to (score >= Context.match_min_score), or None
    when no class matches well; `closest` is the best-scoring class either way.
    """

    model_config = ConfigDict(extra="forbid")

    phrase: str
    class_id: str | None = None
    closest: str | None = None
    score: float = Field(default=0.0, ge=0.0, le=1.0)
    # Mapped, but below Context.match_strong_score: the answer says the match is weak.
    weak: bool = False


class Plan(BaseModel):
    """What to look for, where in time, and what kind of answer the question wants."""

    model_config = ConfigDict(extra="forbid")

    question_type: QuestionType
    # Knowledge-base class ids the question is about, best first.
    targets: list[str] = Field(default_factory=list)
    # Kinds to consider when no class is named ("what emotion does he show?").
    kinds: list[Kind] = Field(default_factory=list)
    # Explicit time window in seconds (None = open on that side).
    start_s: float | None = Field(default=None, ge=0.0)
    end_s: float | None = Field(default=None, ge=0.0)
    # The point in time the question names ("at 2:30"), kept for the answer's wording.
    at_s: float | None = Field(default=None, ge=0.0)
    anchor: Anchor | None = None
    occurrence: Occurrence = "all"
    # The question asks when something starts ("start smiling"): report onsets.
    onset: bool = False
    subject: Subject | None = None
    # "how many people ..." counts distinct persons, not events.
    count_people: bool = False
    follow_up: FollowUp | None = None
    wants_duration: bool = False
    # The text used to search the clip index.
    query: str
    source: Literal["rules", "vlm"] = "rules"
    # How the question's words matched the knowledge base: one entry per target, plus one with
    # no class when the question asks about a behavior (when / yes-no / how many) that no class
    # matches well. Always made by the rules.
    matches: list[PhraseMatch] = Field(default_factory=list)

    def has_window(self) -> bool:
        return self.start_s is not None or self.end_s is not None

    def unmatched(self) -> PhraseMatch | None:
        """The asked behavior that names no knowledge-base class, if any."""
        return next((m for m in self.matches if m.class_id is None), None)

    def match_of(self, class_id: str) -> PhraseMatch | None:
        return next((m for m in self.matches if m.class_id == class_id), None)


class MatchingKB(Protocol):
    """What planning needs from the knowledge base."""

    def match(self, text: str, k: int = 5, kinds: list[str] | None = None) -> list[Any]: ...

    def ids(self) -> list[str]: ...


# --- time expressions -------------------------------------------------------------------------

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
_ANCHOR = re.compile(
    r"\b(after|before|once|until|till)\s+"
    r"(?!\d)((?:he|she|they|it|someone|somebody|the\s+\w+)\s+[^,?.;]+|[a-z]+ing\b[^,?.;]*)",
    re.I,
)


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
            return start_s, end_s, None, _cut(question, match)
    if match := _FIRST_LAST_SPAN.search(question):
        which, count_text, unit_text = match.groups()
        which = "first" if which.lower() in {"first", "opening"} else "last"
        if unit_text.lower() == "half":
            if duration_s is None:
                return None, None, None, _cut(question, match)
            half = duration_s / 2
            span = (0.0, half) if which == "first" else (half, duration_s)
            return span[0], span[1], None, _cut(question, match)
        length_s = _span_length_s(count_text, unit_text)
        if which == "first":
            return 0.0, length_s, None, _cut(question, match)
        if duration_s is None:
            return None, None, None, _cut(question, match)
        return max(0.0, duration_s - length_s), duration_s, None, _cut(question, match)
    if (match := _SECOND_HALF.search(question)) and duration_s is not None:
        return duration_s / 2, duration_s, None, _cut(question, match)
    if match := _AT.search(question):
        at_s = parse_duration(match.group(1))
        if at_s is not None:
            start_s = max(0.0, at_s - POINT_WINDOW_HALF_S)
            return start_s, at_s + POINT_WINDOW_HALF_S, at_s, _cut(question, match)
    if match := _AFTER_TIME.search(question):
        relation, time_text = match.groups()
        time_s = parse_duration(time_text)
        if time_s is not None:
            if relation.lower() in {"after", "since"}:
                return time_s, None, None, _cut(question, match)
            return 0.0, time_s, None, _cut(question, match)
    return None, None, None, question


def _cut(text: str, match: re.Match) -> str:
    return (text[: match.start()] + " " + text[match.end() :]).strip()


# --- question words ---------------------------------------------------------------------------

_FOLLOW_UPS: list[tuple[re.Pattern, FollowUp]] = [
    (
        re.compile(
            r"^\W*(?:and\s+)?(?:what\s+(?:happens|happened|comes)\s+)?"
            r"(?:after\s+that|next|then|afterwards)\b",
            re.I,
        ),
        "after_that",
    ),
    (
        re.compile(r"^\W*(?:and\s+)?(?:what\s+(?:happens|happened)\s+)?before\s+that\b", re.I),
        "before_that",
    ),
    (
        re.compile(
            r"^\W*(?:and\s+)?how\s+long\s+(?:did|does|was|is)\s+(?:it|that|this|the\s+\w+)"
            r"(?:\s+(?:last|take|go\s+on|continue))?\s*\??\s*$",
            re.I,
        ),
        "duration",
    ),
]
_HOW_MANY = re.compile(r"\b(how\s+many|how\s+often|number\s+of|count)\b", re.I)
_HOW_LONG = re.compile(r"\bhow\s+long\b", re.I)
_WHEN = re.compile(
    r"^\W*(?:when|at\s+what\s+(?:time|point|moment)|what\s+time|at\s+which\s+(?:time|point)"
    r"|which\s+moment|find\s+(?:the\s+)?(?:moment|time)s?|show\s+me\s+when)\b"
    r"|\b(?:at\s+what\s+time|what\s+time)\b",
    re.I,
)
_COMPARE = re.compile(
    r"\b(compare|comparison|versus|vs\.?|more\s+\w*\s*than|less\s+\w*\s*than|difference"
    r"\s+between|rather\s+than)\b",
    re.I,
)
_DESCRIBE = re.compile(
    r"^\W*(?:describe|summari[sz]e|tell\s+me\s+about|give\s+(?:me\s+)?an?\s+overview)\b"
    r"|\bwhat\s+(?:happens|is\s+happening|'s\s+happening|happened|is\s+going\s+on|goes\s+on)\b",
    re.I,
)
_WHAT = re.compile(r"^\W*(?:what|which|who|where|how\s+does|how\s+do|how\s+is)\b", re.I)
_YES_NO = re.compile(
    r"^\W*(?:is|are|was|were|does|do|did|can|could|has|have|had|will|would|should)\b", re.I
)
_KIND_WORDS: dict[Kind, re.Pattern] = {
    "emotion": re.compile(
        r"\b(emotions?|feel(?:s|ing|ings)?|mood|express(?:ion|ions)?|"
        r"emotional|affect)\b",
        re.I,
    ),
    "gesture": re.compile(r"\b(gestures?|signs?|hand\s+signals?)\b", re.I),
    "action": re.compile(r"\b(doing|activit(?:y|ies)|actions?|do\b)", re.I),
}
_FIRST = re.compile(r"\b(first\s+time|for\s+the\s+first|earliest)\b", re.I)
_LAST = re.compile(r"\b(last\s+time|for\s+the\s+last|final\s+time|latest)\b", re.I)
_ONSET = re.compile(r"\b(start(?:s|ed)?|begin(?:s)?|began|onset)\b", re.I)
_PEOPLE = re.compile(
    r"\bhow\s+many\s+(people|persons|pedestrians|men|women|individuals|"
    r"children|kids|players|walkers|someone|of\s+them)\b",
    re.I,
)
_SUBJECT = re.compile(
    r"\b(?:the\s+)?((?:man|woman|person|boy|girl|guy|lady|child|kid|player|one)\s+)?"
    r"(?:on\s+the\s+|to\s+the\s+|at\s+the\s+)(left|right|middle|center|centre)\b"
    r"|\bthe\s+(leftmost|rightmost)\s*(\w+)?",
    re.I,
)
# Words that carry no behavior meaning; removed before matching against the knowledge base.
_STOP_TEXT = """a an the is are was were be been does do did doing done can could has have had will
    would
    should when what which who whom where why how many much often long time times moment moments
    point he she they it him her them his hers their its someone somebody anyone person people
    man woman men women boy girl guy lady child kid video clip recording footage scene in on at
    of to for from by with during within there this that these those ever any some first last
    start starts started begin begins began onset number count show me find tell please see
    seen visible appear appears appeared get gets make makes go goes give gives gave while
    again next then afterwards after before and or but than versus vs more less most least
    other another kind sort type emotion emotions feel feels feeling mood expression gesture
    gestures sign signs action actions activity activities behavior behaviour left right
    middle center centre i you we us our your any thing things something happen happens
    happened happening describe summarize summarise shows showing going overview"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())


def _content_words(text: str) -> str:
    words = re.findall(r"[a-z][a-z'-]*", text.lower())
    return " ".join(w for w in words if w not in _STOP_WORDS)


def question_type(question: str, targets: list[str]) -> QuestionType:
    """The kind of answer wanted; rules checked from the most to the least specific."""
    if _HOW_MANY.search(question):
        return "how_many"
    if _WHEN.search(question):
        return "when"
    if _COMPARE.search(question) or (len(targets) >= 2 and re.search(r"\bor\b", question)):
        return "compare"
    if _DESCRIBE.search(question):
        return "describe"
    if _YES_NO.search(question):
        return "yes_no"
    if _WHAT.search(question):
        return "what"
    if _HOW_LONG.search(question):
        return "when"
    return "when" if targets else "describe"


def phrase_of(text: str) -> str:
    """The question's own words for a behavior: leading and trailing question words, pronouns
    and fillers dropped ("Is she playing the piano?" -> "playing the piano")."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    while words and words[0].lower() in _STOP_WORDS:
        words.pop(0)
    while words and words[-1].lower() in _STOP_WORDS:
        words.pop()
    return " ".join(words)


def match_phrases(
    text: str, kb: MatchingKB, kinds: list[Kind] | None = None, ctx: Context | None = None
) -> list[PhraseMatch]:
    """How the words of `text` map to classes: the best match and others nearly as good, each
    at least `ctx.match_min_score`, and per part for split phrases ("happy or sad"). When the
    best match is below the floor, one entry without a class (the closest one named)."""
    ctx = ctx or Context()
    content = _content_words(text)
    if not content:
        return []
    wanted_kinds = list(kinds) if kinds else None
    matches = kb.match(content, k=5, kinds=wanted_kinds)
    phrase = phrase_of(text) or content
    if not matches or matches[0].score < ctx.match_min_score:
        closest = matches[0] if matches else None
        return [
            PhraseMatch(
                phrase=phrase,
                closest=closest.id if closest else None,
                score=_score(closest.score) if closest else 0.0,
            )
        ]
    best = matches[0].score
    found = [(phrase, m) for m in matches if m.score >= best - TIE_MARGIN]
    # Split phrases ("happy or sad") are matched one by one, in the question's order.
    pieces = re.split(r"\b(?:or|and|versus|vs|than)\b", text, flags=re.I)
    parts = [p for p in pieces if _content_words(p)]
    if len(parts) > 1:
        by_part = []
        for part in parts:
            top = kb.match(_content_words(part), k=1, kinds=wanted_kinds)
            if top and top[0].score >= ctx.match_min_score:
                by_part.append((phrase_of(part) or _content_words(part), top[0]))
        found = by_part + found
    result: dict[str, PhraseMatch] = {}
    for words, match in found:
        result.setdefault(
            match.id,
            PhraseMatch(
                phrase=words,
                class_id=match.id,
                closest=match.id,
                score=_score(match.score),
                weak=match.score < ctx.match_strong_score,
            ),
        )
    return list(result.values())


def _score(value: float) -> float:
    return round(min(max(float(value), 0.0), 1.0), 4)


def match_targets(
    text: str, kb: MatchingKB, kinds: list[Kind] | None = None, ctx: Context | None = None
) -> list[str]:
    """Class ids the words name (see `match_phrases`), best first; empty when none matches."""
    return [m.class_id for m in match_phrases(text, kb, kinds, ctx) if m.class_id]


def _subject(question: str) -> Subject | None:
    match = _SUBJECT.search(question)
    if not match:
        return None
    noun, side, extreme, extreme_noun = match.groups()
    side_word = (side or extreme or "").lower().replace("most", "")
    side_word = {"middle": "center", "centre": "center"}.get(side_word, side_word)
    noun_text = (noun or extreme_noun or "person").strip()
    return Subject(text=f"the {noun_text} on the {side_word}", side=side_word)  # type: ignore[arg-type]


def _anchor(question: str, kb: MatchingKB, ctx: Context) -> tuple[Anchor | None, str]:
    match = _ANCHOR.search(question)
    if not match:
        return None, question
    relation_word, clause = match.groups()
    relation = "after" if relation_word.lower() in {"after", "once"} else "before"
    targets = match_targets(clause, kb, kinds=None, ctx=ctx)
    anchor = Anchor(relation=relation, target=targets[0] if targets else None, text=clause.strip())
    return anchor, _cut(question, match)


def follow_up_of(question: str) -> FollowUp | None:
    """ "and after that?" / "before that?" / "how long did it last?" refer to the last answer."""
    for pattern, kind in _FOLLOW_UPS:
        if pattern.search(question):
            return kind
    return None


# Questions after one behavior: their words name it, so words that match no class are a
# behavior the knowledge base does not know (open "what" and "describe" questions are not).
SPECIFIC_QUESTIONS = frozenset({"when", "how_many", "yes_no", "compare"})


def plan_question(
    question: str, kb: MatchingKB, duration_s: float | None = None, ctx: Context | None = None
) -> Plan:
    """The rule-based plan for one question (pure: no model, no video access).

    `ctx` gives the match thresholds (`match_min_score`, `match_strong_score`).
    """
    ctx = ctx or Context()
    follow_up = follow_up_of(question)
    if follow_up is not None:
        question_kind: QuestionType = "when" if follow_up == "duration" else "what"
        return Plan(
            question_type=question_kind,
            follow_up=follow_up,
            wants_duration=follow_up == "duration",
            query=question.strip(),
        )
    start_s, end_s, at_s, rest = parse_time_window(question, duration_s)
    anchor, rest = _anchor(rest, kb, ctx)
    subject = _subject(rest)
    if subject is not None:
        rest = _SUBJECT.sub(" ", rest)
    kinds = [kind for kind, pattern in _KIND_WORDS.items() if pattern.search(rest)]
    matches = match_phrases(rest, kb, kinds=None, ctx=ctx)
    targets = [m.class_id for m in matches if m.class_id]
    kind_of_question = question_type(question, targets)
    if not targets and (kinds or kind_of_question not in SPECIFIC_QUESTIONS):
        matches = []  # open questions: leftover words are context, not an asked behavior
    occurrence: Occurrence = "all"
    if _LAST.search(question):
        occurrence = "last"
    elif _FIRST.search(question) or (_ONSET.search(rest) and kind_of_question == "when"):
        occurrence = "first"
    return Plan(
        question_type=kind_of_question,
        targets=targets,
        kinds=[] if targets else kinds,
        start_s=start_s,
        end_s=end_s,
        at_s=at_s,
        anchor=anchor,
        occurrence=occurrence,
        onset=bool(_ONSET.search(rest)),
        subject=subject,
        count_people=bool(_PEOPLE.search(question)),
        wants_duration=bool(_HOW_LONG.search(question)),
        query=_content_words(rest) or question.strip(),
        matches=matches,
    )


# --- VLM refinement -----------------------------------------------------------------------------


def plan_schema_json() -> str:
    """The JSON schema a refining model must follow (quoted in the plan prompt)."""
    return json.dumps(Plan.model_json_schema(), separators=(",", ":"))


def refine_plan(rule_plan: Plan, data: dict | None, known_ids: set[str]) -> tuple[Plan, str]:
    """The model's plan when it validates against the schema, else the rule plan.

    Returns (plan, note); unknown class ids from the model are dropped, because only
    knowledge-base classes can be checked against detections.
    """
    if not isinstance(data, dict):
        return rule_plan, "the model's plan was not JSON; the rule-based plan stands"
    merged = {**rule_plan.model_dump(), **data, "source": "vlm"}
    # Follow-ups and how the words matched the knowledge base are the rules' own findings.
    merged["follow_up"] = rule_plan.follow_up
    merged["matches"] = rule_plan.model_dump()["matches"]
    try:
        plan = Plan.model_validate(merged)
    except ValidationError as error:
        log.info("VLM plan rejected: %s", error.errors()[:3])
        return rule_plan, "the model's plan did not fit the schema; the rule-based plan stands"
    targets = [t for t in plan.targets if t in known_ids]
    if plan.targets and not targets:
        targets = rule_plan.targets
    kept = set(targets)
    matches = [m for m in rule_plan.matches if (m.class_id in kept) or not (m.class_id or kept)]
    plan = plan.model_copy(update={"targets": targets, "matches": matches})
    return plan, "plan refined by the model"
