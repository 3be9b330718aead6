"""The plan of a question: what to look for, where in time, what kind of answer; and its
refinement by a model, validated against the same schema (the rule-based plan stands on any
failure)."""

import json
import logging
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.state import Kind

log = logging.getLogger(__name__)

QuestionType = Literal["when", "how_many", "what", "describe", "compare", "yes_no"]
FollowUp = Literal["after_that", "before_that", "duration"]
Occurrence = Literal["first", "last", "all"]


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


def plan_schema_json() -> str:
    """The JSON schema a refining model must follow (quoted in the plan prompt)."""
    return json.dumps(Plan.model_json_schema(), separators=(",", ":"))


# What the question itself asked and where: a refining model may add detail (occurrence,
# onset, kinds, a better search text), never change these. Targets are among them once the
# rules found any; where the rules could map no words to a class, the model may name one.
ASKED_FIELDS = (
    "question_type",
    "start_s",
    "end_s",
    "at_s",
    "anchor",
    "subject",
    "count_people",
    "follow_up",
)


def refine_plan(rule_plan: Plan, data: dict | None, known_ids: set[str]) -> tuple[Plan, str]:
    """The model's plan when it validates against the schema, else the rule plan.

    Returns (plan, note). The model may add detail but never change what was asked or where:
    the rules' window, anchor, subject and question type stand (`ASKED_FIELDS`), and so do
    their targets when they found any, so a reply that turns "happy" into "sad" or names a
    window the question did not is not followed. Unknown class ids from the model are
    dropped: only knowledge-base classes can be checked against detections.
    """
    if not isinstance(data, dict):
        return rule_plan, "the model's plan was not JSON; the rule-based plan stands"
    try:
        plan = Plan.model_validate({**rule_plan.model_dump(), **data, "source": "vlm"})
    except ValidationError as error:
        log.info("VLM plan rejected: %s", error.errors()[:3])
        return rule_plan, "the model's plan did not fit the schema; the rule-based plan stands"
    changed = [name for name in ASKED_FIELDS if getattr(plan, name) != getattr(rule_plan, name)]
    update = {name: getattr(rule_plan, name) for name in ASKED_FIELDS}
    if rule_plan.targets:
        if plan.targets != rule_plan.targets:
            changed.insert(0, "targets")
        update["targets"], update["matches"] = rule_plan.targets, rule_plan.matches
    else:
        targets = [t for t in plan.targets if t in known_ids]
        kept = set(targets)
        # How the words matched stays the rules' finding; a phrase the model mapped is no
        # longer an unmatched one.
        matches = [m for m in rule_plan.matches if m.class_id is None and not kept]
        update["targets"], update["matches"] = targets, matches
    plan = plan.model_copy(update=update)
    if changed:
        return plan, f"plan refined by the model (its changes to {', '.join(changed)} ignored)"
    return plan, "plan refined by the model"
