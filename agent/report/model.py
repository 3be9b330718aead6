"""The records of a behavior report: what the JSON format holds (schema in docs/report.md)."""

from typing import Any, Literal

from pydantic import Field

from agent.provenance import ModelEntry
from agent.state import Kind, Record, VideoInfo

SCHEMA_VERSION = 1
KINDS: tuple[Kind, ...] = ("emotion", "gesture", "action")


class ReportVideo(VideoInfo):
    """The recording the report is about: its probe record, file name, and whether it is a still."""

    name: str
    is_image: bool = False


class Confusion(Record):
    """A class this one is easily mistaken for, and how to tell them apart."""

    id: str
    how_to_tell: str = ""


class KnowledgeEntry(Record):
    """What the knowledge base says about a label the report uses (its appendix section)."""

    id: str
    kind: str
    name: str
    definition: str = ""
    cues: list[str] = []
    # Core FACS action units of an emotion ("AU6 cheek raiser + AU12 lip corner puller").
    action_units: str = ""
    temporal: str = ""
    confusions: list[Confusion] = []
    sources: list[str] = []
    # False when the label has no curated class; `closest` then names the nearest ones.
    in_knowledge_base: bool = True
    closest: list[str] = []


class ReportEvent(Record):
    """One merged event: an emotion episode, a gesture occurrence or an action."""

    event_id: str
    kind: Kind
    label: str
    name: str
    start_s: float
    end_s: float
    duration_s: float
    # Duration-weighted mean of the merged detections' confidences, and their maximum.
    confidence: float
    peak_confidence: float
    cues: list[str] = []
    source: str = "perception"
    person_id: int | None = None
    bbox: list[float] | None = None
    # How many raw detections were merged into this event.
    detections: int = 1
    # Anchor of the knowledge-base appendix entry (`knowledge[kb_id]`).
    kb_id: str
    # Time of the key frame (the most confident moment), and its image (key into the report's
    # images; a relative file path in Markdown/JSON output, a data URI inside HTML).
    key_frame_s: float
    key_frame: str | None = None
    # Why the event is notable (empty when it is not).
    notable: list[str] = []


class LabelTotal(Record):
    """Totals of one label over the whole recording."""

    kind: Kind
    label: str
    name: str
    count: int
    total_s: float
    mean_duration_s: float
    # Share of the recording's duration covered by the label (None for a still image).
    share: float | None = None


class NotableMoment(Record):
    """A moment worth a look: the onset of a strong emotion, a rare gesture."""

    event_id: str
    time_s: float
    kind: Kind
    label: str
    reason: Literal["strong_emotion_onset", "rare_gesture"]
    text: str


class Segment(Record):
    """A clip of the index, with its caption and (with a VLM) a model-written narrative."""

    clip_id: int
    start_s: float
    end_s: float
    event_ids: list[str] = []
    caption: str = ""
    narrative: str = ""
    # True when `narrative` (or `caption`) was written by a model, not computed.
    model_written: bool = False
    narrative_model: str = ""


class Provenance(Record):
    """How, when and with what the report was made, and what the method cannot tell."""

    generated_at: str
    backend: str
    model_id: str
    quantization: str
    perception_model: str
    # Every model behind the report (landmarks, learned perception models, the VLM).
    models: list[ModelEntry] = []
    sampling: dict[str, float | int | str] = {}
    software: dict[str, str] = {}
    limits: list[str] = []
    # When and with which settings the clip index the report reads was built.
    indexed_at: str = ""
    index_settings: dict[str, Any] = {}


class UncheckedClass(Record):
    """A knowledge-base class the backend behind the report could not check, and why: its
    absence from the report says nothing about the recording."""

    id: str
    kind: str
    name: str
    # agent.perception.capabilities status: `none` (no rule, or its learned model is not
    # installed) or `off` (switched off by calibration).
    status: str
    reason: str


class ReportData(Record):
    """Everything a report shows; the writers only lay it out."""

    schema_version: int = SCHEMA_VERSION
    title: str
    video: ReportVideo
    provenance: Provenance
    events: list[ReportEvent] = []
    # Event ids per kind, in time order (the rows of the timeline).
    timelines: dict[str, list[str]] = {}
    totals: list[LabelTotal] = []
    notable: list[NotableMoment] = []
    segments: list[Segment] = []
    knowledge: dict[str, KnowledgeEntry] = {}
    # Knowledge-base classes the offline perception rules could not check for this report.
    not_checkable: list[UncheckedClass] = []
    # Colour (#rrggbb) of each label, shared by the charts and the HTML.
    colors: dict[str, str] = {}
    # Image keys of the charts (`timeline`, `totals`) in `images`.
    charts: dict[str, str] = {}
    # Encoded images by key (PNG/JPEG bytes). Not part of the JSON: writers store them.
    images: dict[str, bytes] = Field(default_factory=dict, exclude=True)

    def event(self, event_id: str) -> ReportEvent:
        """The event with this id."""
        return next(e for e in self.events if e.event_id == event_id)
