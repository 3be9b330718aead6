"""Serialisable records that flow through the system (and, later, the agent's graph state).

Everything here is plain data: paths, ids, seconds, text. Times are float seconds.
"""

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

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


class Evidence(Record):
    """One moment that supports an answer; times come from clip/detection records, never text."""

    video: str
    start_s: float
    end_s: float
    kind: str
    label: str
    confidence: float
    rationale: str
    clip_id: int | None = None


class Answer(Record):
    """The agent's reply: a direct answer in plain language plus the evidence behind it."""

    answer: str
    evidence: list[Evidence] = []
    # The backend that answered and the model it ran (`agent.provenance`), never a guess.
    backend: str = "perception"
    model_id: str = ""


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
    # The reply of this turn (Answer.model_dump()).
    answer: dict[str, Any]
    # Earlier turns of this thread: question, plan, answer, evidence (for follow-ups).
    history: Annotated[list[dict[str, Any]], keep_recent_turns]
