"""Serialisable records that flow through the system (and, later, the agent's graph state).

Everything here is plain data: paths, ids, seconds, text. Times are float seconds.
"""

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["emotion", "gesture", "action"]


class Record(BaseModel):
    """Base of all records: strict field names, JSON round-trip."""

    model_config = ConfigDict(extra="forbid")


class VideoInfo(Record):
    """What `video.probe` finds out about a file."""

    path: str
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    sha256: str


class Clip(Record):
    """A span of one video, the unit of indexing and retrieval. Clips never straddle a cut."""

    clip_id: int
    start_s: float
    end_s: float
    shot_index: int = 0


class Detection(Record):
    """Something seen in a time span: an emotion episode, a gesture, an action."""

    kind: Kind
    label: str
    start_s: float
    end_s: float
    confidence: float = Field(ge=0.0, le=1.0)
    # Normalised [x, y, w, h] of the person/hand/face the detection is about, when known.
    bbox: list[float] | None = None
    # What was seen, in words ("AU12 lip corner puller 0.8, AU6 0.6").
    cues: str = ""
    person_id: int | None = None
    source: Literal["perception", "vlm"] = "perception"


class ObjectSighting(Record):
    """An object the detector saw over a stretch of sampled frames (a COCO label, not a
    knowledge-base class): where it was best seen, and how many were in view at once."""

    label: str
    start_s: float
    end_s: float
    # The detector's best score over the stretch, and the box and time of that frame.
    score: float = Field(ge=0.0, le=1.0)
    bbox: list[float]
    best_s: float
    # The most of this label in one frame (people on a street), and the frames it was seen in.
    count: int = 1
    frames: int = 1


class Evidence(Record):
    """One moment that supports an answer; times come from clip/detection records, never text."""

    video: str
    start_s: float
    end_s: float
    kind: str
    label: str
    # What perception measured (calibrated); None when nothing measured it (a VLM's word).
    confidence: float | None = None
    rationale: str
    clip_id: int | None = None


class AskedClass(Record):
    """A behavior the question asks about: the class it was mapped to, how well, and whether
    the backend that answered can check it."""

    # Knowledge-base class id; None when the question's words match no class well.
    id: str | None
    # The class name, else the question's own words.
    name: str
    # The question's words for it ("playing the piano").
    phrase: str = ""
    # KnowledgeBase.match score of the mapping (or of the closest class, when `id` is None).
    match_score: float | None = None
    # Mapped below Context.match_strong_score: the answer calls the match weak.
    weak: bool = False
    # The closest class when `id` is None.
    closest: str | None = None
    checkable: bool = True
    # Why the backend cannot check it (empty when it can).
    reason: str = ""


class Answer(Record):
    """The agent's reply: a direct answer in plain language plus the evidence behind it.

    `evidence` supports the answer to the question as asked: when the asked behavior was not
    seen it is empty and `found` is false; what was seen instead is in `other_evidence`, never
    in `evidence`.
    """

    answer: str
    # Whether the behavior asked about was seen (for open questions: whether anything was);
    # None on construction means "decide from `evidence`".
    found: bool | None = None
    evidence: list[Evidence] = []
    # Other observations (other classes in the window searched, or the asked class outside
    # the window the question named): context, not the answer.
    other_evidence: list[Evidence] = []
    # The behaviors the question asks about, and whether the backend could check them.
    asked: list[AskedClass] = []
    # The backend that answered and the model it ran (`agent.provenance`), never a guess.
    backend: str = "perception"
    model_id: str = ""

    @model_validator(mode="after")
    def _found_from_evidence(self) -> "Answer":
        if self.found is None:
            self.found = bool(self.evidence)
        return self


def keep_recent_turns(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reducer of the conversation history: append, keep the last 20 turns of a thread."""
    return operator.add(old or [], new or [])[-20:]


class AgentState(TypedDict, total=False):
    """The LangGraph agent's state: plain data only (the SQLite checkpointer stores it as is).

    Heavy resources (index, VLM, perceiver, knowledge base) are not here: they are injected
    through the graph's runtime context. Records are stored as `model_dump()` dicts.
    """

    # The video (VideoInfo.model_dump()) and the question of the current turn.
    video: dict[str, Any]
    question: str
    # The Plan (agent.planning.Plan.model_dump()) and notes on how it was made.
    plan: dict[str, Any]
    # The time window searched now, in seconds, and the search text.
    window: dict[str, float]
    query: str
    # Retrieval passes made this turn (bounded by Context.max_agent_steps) and the loop's
    # strategies already tried ("synonyms", "neighbours", "widen").
    step: int
    tried: list[str]
    # Clips from the index search (clip_id, start_s, end_s, score, caption) and the target
    # detections (Detection.model_dump()) inside the window.
    hits: list[dict[str, Any]]
    detections: list[dict[str, Any]]
    # What closer inspection found: VLM replies per clip (clip_id, start_s, end_s, text, data).
    findings: list[dict[str, Any]]
    # verify's decision and its reason.
    verdict: Literal["answer", "retry"]
    reason: str
    # A trace of the turn, one line per step (shown by the CLI and the web app), and caveats
    # the answer must mention ("could not find when she sits down; searched the whole video").
    trace: list[str]
    notes: list[str]
    # The behaviors the question asks about (AskedClass dumps, made by the plan node); those the
    # active backend cannot check are declared in the answer, never searched for.
    asked: list[dict[str, Any]]
    # The reply of this turn (Answer.model_dump()).
    answer: dict[str, Any]
    # Earlier turns of this thread: question, plan, answer, evidence (for follow-ups).
    history: Annotated[list[dict[str, Any]], keep_recent_turns]
