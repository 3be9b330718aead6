"""Serialisable records that flow through the system (and, later, the agent's graph state).

Everything here is plain data: paths, ids, seconds, text. Times are float seconds.
"""

from typing import Literal

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
    backend: str = "perception"
