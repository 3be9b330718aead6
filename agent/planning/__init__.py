"""Planning: a plain-language question becomes a `Plan` (what to look for, where in time, which
answer), by rules (`questions`, with the time phrases of `times`); a VLM may refine it
(`plan.refine_plan`), validated against the same schema.
"""

from agent.planning.plan import (
    Anchor,
    FollowUp,
    MatchingKB,
    Occurrence,
    PhraseMatch,
    Plan,
    QuestionType,
    Subject,
    plan_schema_json,
    refine_plan,
)
from agent.planning.questions import (
    follow_up_of,
    match_phrases,
    match_targets,
    phrase_of,
    plan_question,
    question_type,
)
from agent.planning.times import POINT_WINDOW_HALF_S, parse_duration, parse_time_window

__all__ = [
    "POINT_WINDOW_HALF_S",
    "Anchor",
    "FollowUp",
    "MatchingKB",
    "Occurrence",
    "PhraseMatch",
    "Plan",
    "QuestionType",
    "Subject",
    "follow_up_of",
    "match_phrases",
    "match_targets",
    "parse_duration",
    "parse_time_window",
    "phrase_of",
    "plan_question",
    "plan_schema_json",
    "question_type",
    "refine_plan",
]
