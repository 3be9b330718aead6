"""Plain records the web app shows: a library entry, a timeline event, a timeline view."""

from pathlib import Path

from agent.state import Record


class LibraryVideo(Record):
    """An indexed video as the web app lists it."""

    sha256: str
    path: str
    name: str
    duration_s: float
    clips: int = 0
    detections: int = 0
    backend: str = "perception"

    def choice(self) -> tuple[str, str]:
        """(label, value) for the video picker: the value is the content hash."""
        minutes, seconds = divmod(round(self.duration_s), 60)
        return f"{self.name} ({minutes:d}:{seconds:02d})", self.sha256


class TimelineEvent(Record):
    """One merged event of the timeline table."""

    kind: str
    label: str
    name: str
    start_s: float
    end_s: float
    confidence: float
    color: str = "#888888"
    cues: list[str] = []


class TimelineView(Record):
    """The chart (a PNG file) and the events of one video."""

    chart_png: Path | None = None
    events: list[TimelineEvent] = []
