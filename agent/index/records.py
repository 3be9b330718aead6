"""The records the clip library stores and returns: videos, clips, search hits, a payload."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agent.state import Clip, Detection, ObjectSighting, Record, VideoInfo


class VideoRecord(Record):
    """One video of the library (keyed by content hash) and how it was indexed."""

    sha256: str
    path: str
    paths: list[str] = []
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    size_bytes: int
    status: Literal["indexing", "complete"]
    settings: dict[str, Any]
    clip_count: int = 0
    detection_count: int = 0
    indexed_at: float | None = None
    index_wall_s: float | None = None
    # While indexing (or after an interrupted run): seconds of video in finished, checkpointed
    # stretches, from which the next run resumes.
    checkpointed_s: float | None = None
    # Set by `index_video` when the call did no work (already indexed with the same settings).
    reused: bool = False

    def info(self, path: str | Path | None = None) -> VideoInfo:
        """The probe record of this video, at `path` (default: the path it was indexed from)."""
        fields = self.model_dump(include=set(VideoInfo.model_fields) - {"path"})
        return VideoInfo(path=str(path if path is not None else self.path), **fields)


class ClipRecord(Clip):
    """A stored clip: its span plus the text that was embedded for it."""

    sha256: str
    caption: str = ""
    text: str = ""


class ClipHit(Record):
    """One search result, best first: a clip, and the span inside it of the evidence that made
    the hit (`span_start_s`/`span_end_s`; the whole clip when no detection did).

    `score` is cosine similarity for a plain vector search (`ClipSearch.search`), and the
    reciprocal-rank-fusion score for hybrid search (`agent.index.hybrid`); higher is closer
    either way. `label` is the class (or object) whose detections made the hit, if any;
    `why` says which rankings found it.
    """

    score: float
    video: str
    sha256: str
    clip_id: int
    start_s: float
    end_s: float
    caption: str
    text: str
    detections: list[Detection] = []
    span_start_s: float | None = None
    span_end_s: float | None = None
    label: str | None = None
    why: list[str] = []

    def model_post_init(self, _context: Any) -> None:
        if self.span_start_s is None:
            self.span_start_s = self.start_s
        if self.span_end_s is None:
            self.span_end_s = self.end_s


class Retrieval(Record):
    """What hybrid search found for a query: the hits, best first, or none ("no matching
    moment"), with the classes the query was read as and the labels seen nearest to it."""

    query: str
    hits: list[ClipHit] = []
    # Knowledge-base classes the query names (id, match score), best first.
    matched: list[tuple[str, float]] = []
    # Labels seen in the searched scope nearest to the query (label, similarity), best first.
    closest: list[tuple[str, float]] = []

    @property
    def no_match(self) -> bool:
        return not self.hits


@dataclass
class VideoPayload:
    """Everything `ClipIndex.put_video` stores for one video, in one transaction."""

    info: VideoInfo
    settings: dict[str, Any]
    clips: list[Clip]
    captions: list[str]
    texts: list[str]
    detections: list[Detection]
    # space name -> (model version, (len(clips), dim) unit vectors)
    vectors: dict[str, tuple[str, np.ndarray]]
    wall_s: float = 0.0
    # What the object detector saw (agent.perception.sightings), boxes included.
    objects: list[ObjectSighting] = field(default_factory=list)
    # One text per thing seen, (kind, label, text) (agent.indexing.texts.thing_texts), and
    # per space their (len(things), dim) unit vectors.
    things: list[tuple[str, str, str]] = field(default_factory=list)
    thing_vectors: dict[str, np.ndarray] = field(default_factory=dict)
