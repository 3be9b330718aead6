"""Question understanding without a model: type, target classes, time constraints, subject.

`plan_question` turns a plain-language question into a `Plan` by rules (regular expressions for
times and question words, knowledge-base matching for behaviors).
"""

import re

from agent.context import Context
from agent.planning.plan import (
    Anchor,
    FollowUp,
    MatchingKB,
    Occurrence,
    PhraseMatch,
    Plan,
    QuestionType,
    Subject,
)
from agent.planning.times import cut_phrase, parse_time_window
from agent.state import Kind

# Other classes are kept only when they tie with the best one: "thumbs up" must not pull in
# thumbs_down (0.91 by embedding); "happy or sad" is split and matched part by part instead.
TIE_MARGIN = 0.01
# "after she sits down": a window that starts or ends at another behavior.
_ANCHOR = re.compile(
    r"\b(after|before|once|until|till)\s+"
    r"(?!\d)((?:he|she|they|it|someone|somebody|the\s+\w+)\s+[^,?.;]+|[a-z]+ing\b[^,?.;]*)",
    re.I,
)

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
    return anchor, cut_phrase(question, match)


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
