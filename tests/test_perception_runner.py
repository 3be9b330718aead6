"""The one perception runner: sessions fed batch by batch, progress, times clamped."""

import numpy as np
import pytest

from agent.context import Context
from agent.perception.runner import PerceptionRun, perceive_path, run_perception
from agent.state import Detection, ObjectSighting
from agent.video import FrameBatch
from tests.synthetic import write_video


class RecordingSession:
    """Stands in for PerceptionSession: keeps the frame times it is fed, returns set
    detections (one of them running past the video's end, one wholly after it)."""

    made: list["RecordingSession"] = []

    def __init__(self, perceiver, kb, ctx, still=False) -> None:
        self.still, self.fps, self.times_s = still, ctx.sample_fps, []
        RecordingSession.made.append(self)

    def add(self, batch) -> None:
        self.times_s += [float(t) for t in batch.timestamps_s]

    def finish(self) -> list[Detection]:
        wave = dict(kind="gesture", label="wave", confidence=0.8)
        return [
            Detection(start_s=2.0, end_s=9.5, **wave),
            Detection(start_s=11.0, end_s=12.0, **wave),
            Detection(start_s=0.5, end_s=1.0, **wave),
        ]


def batch(times_s: list[float]) -> FrameBatch:
    frames = np.zeros((len(times_s), 8, 8, 3), np.uint8)
    return FrameBatch(frames, np.arange(len(times_s)), np.array(times_s))


def test_a_run_reports_progress_per_batch_and_clamps_to_the_video():
    events: list[dict] = []
    run = PerceptionRun(
        object(),
        None,
        Context(sample_fps=2.0),
        duration_s=8.0,
        progress=events.append,
        session_factory=RecordingSession,
    )
    for times in ([0.0, 0.5, 1.0], [1.5, 2.0], [7.0]):
        run.add(batch(times))
    detections = run.finish()
    assert [(d.start_s, d.end_s) for d in detections] == [(0.5, 1.0), (2.0, 8.0)]
    assert [(e["done"], e["total"]) for e in events] == [(3, 16), (5, 16), (6, 16)]
    assert events[-1]["message"] == "00:07 of 00:08" and events[0]["stage"] == "perceive"
    assert RecordingSession.made[-1].times_s == [0.0, 0.5, 1.0, 1.5, 2.0, 7.0]


class SessionWithObjects(RecordingSession):
    def object_sightings(self) -> list[ObjectSighting]:
        seen = dict(label="cup", score=0.7, bbox=[0.1, 0.1, 0.2, 0.2], count=1)
        return [
            ObjectSighting(start_s=1.0, end_s=9.0, best_s=8.5, **seen),
            ObjectSighting(start_s=10.0, end_s=11.0, best_s=10.0, **seen),
        ]


def test_the_objects_seen_are_clamped_like_detections():
    run = PerceptionRun(
        object(), None, Context(), duration_s=8.0, session_factory=SessionWithObjects
    )
    run.add(batch([0.0]))
    run.finish()
    assert [(s.start_s, s.end_s, s.best_s) for s in run.objects] == [(1.0, 8.0, 8.0)]
    # A session without an object detector gives none.
    plain = PerceptionRun(object(), None, Context(), session_factory=RecordingSession)
    plain.finish()
    assert plain.objects == []


def test_a_still_puts_everything_at_zero():
    detections = run_perception(
        [batch([0.0])], object(), None, Context(), still=True, session_factory=RecordingSession
    )
    assert RecordingSession.made[-1].still
    assert {(d.start_s, d.end_s) for d in detections} == {(0.0, 0.0)}


def test_perceive_path_samples_the_span_at_the_asked_rate(tmp_path):
    video = write_video(tmp_path / "v.mp4", [4.0], fps=25.0, size=(64, 48))
    detections = perceive_path(
        video, Context(), None, object(), start_s=1.0, end_s=2.0, fps=5.0,
        session_factory=RecordingSession,
    )  # fmt: skip
    session = RecordingSession.made[-1]
    assert session.fps == 5.0  # the session is told the rate it is fed at
    assert session.times_s == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8], abs=1e-6)
    assert max(d.end_s for d in detections) <= 4.0  # clamped to the 4 s video
    assert not [d for d in detections if d.start_s >= 4.0]
