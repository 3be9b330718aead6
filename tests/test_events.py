"""The one event rule (agent/events.py) and the agent, report and evaluation agreeing on it."""

import json

import pytest

from agent.context import Context
from agent.errors import ConfigError
from agent.events import (
    clamp_detections,
    covered_s,
    label_key,
    merge_detections,
    shared_s,
    spans_overlap,
)
from agent.state import Detection


def det(label, start_s, end_s, confidence=0.8, kind="gesture", **extra) -> Detection:
    return Detection(
        kind=kind, label=label, start_s=start_s, end_s=end_s, confidence=confidence, **extra
    )


def test_the_gap_and_the_minimum_confidence_come_from_the_context():
    detections = [det("wave", 0.0, 1.0), det("wave", 2.5, 3.0, 0.3), det("wave", 3.2, 4.0)]
    spans = lambda ctx: [(e.start_s, e.end_s) for e in merge_detections(detections, 10, ctx)]  # noqa: E731
    assert spans(Context(event_merge_gap_s=1.0)) == [(0.0, 1.0), (2.5, 4.0)]
    assert spans(Context(event_merge_gap_s=1.5)) == [(0.0, 4.0)]
    # The weak middle detection leaves a 2.2 s gap: no bridge over it at 1.5 s.
    strong_only = Context(event_merge_gap_s=1.5, event_min_confidence=0.5)
    assert spans(strong_only) == [(0.0, 1.0), (3.2, 4.0)]
    with pytest.raises(ConfigError, match="event_min_confidence"):
        Context(event_min_confidence=1.5)


def test_events_keep_kinds_people_and_labels_apart_and_compare_labels_by_key():
    detections = [
        det("thumbs_up", 0.0, 1.0, person_id=1),
        det("Thumbs up", 1.2, 2.0, person_id=1),  # the same label, spelled otherwise
        det("thumbs_up", 0.5, 1.5, person_id=2),
        det("happy", 0.0, 2.0, kind="emotion", person_id=1),
    ]
    events = merge_detections(detections, 10.0, Context())
    assert [(e.kind, label_key(e.label), e.person_id, e.detections) for e in events] == [
        ("emotion", "happy", 1, 1),
        ("gesture", "thumbs_up", 1, 2),
        ("gesture", "thumbs_up", 2, 1),
    ]
    merged = events[1]
    assert (merged.start_s, merged.end_s) == (0.0, 2.0)
    assert merged.strength == pytest.approx(0.8 * 1.0 + 0.8 * 0.8)


def test_spans_overlap_clamping_and_coverage():
    assert spans_overlap(2.0, 3.0, 0.0, 10.0) and not spans_overlap(10.0, 12.0, 0.0, 10.0)
    assert spans_overlap(5.0, 5.0, 0.0, 10.0) and spans_overlap(0.0, 0.0, 0.0, 0.0)
    assert shared_s(0.0, 4.0, 3.0, 9.0) == 1.0 and shared_s(0.0, 1.0, 2.0, 3.0) == 0.0
    assert covered_s([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == 4.0
    clamped = clamp_detections([det("wave", -1.0, 2.0), det("fist", 12.0, 13.0)], 10.0)
    assert [(d.label, d.start_s, d.end_s) for d in clamped] == [("wave", 0.0, 2.0)]
    still = clamp_detections([det("fist", 3.0, 4.0)], 0.0)
    assert [(d.start_s, d.end_s) for d in still] == [(0.0, 0.0)]


@pytest.mark.slow
def test_agent_report_and_evaluation_count_the_same_events_on_a_real_video(shared_media, tmp_path):
    """The pedestrians clip has many walkers, each tracked as its own person: walks of
    different people overlap in time and must stay separate events for all three."""
    from agent.api import AgentService
    from agent.evaluation.annotations import Item
    from agent.evaluation.predictors import PerceptionPredictor, _ground_with_index
    from agent.index import ClipIndex
    from agent.knowledge import load_knowledge_base
    from agent.perception import Perceiver
    from agent.report import build_report

    ctx = Context(home=tmp_path / "home", event_merge_gap_s=2.5)
    video = shared_media / "scene_pedestrians_walking_opencv_vtest.avi"
    kb = load_knowledge_base(Context())
    with Perceiver(ctx) as perceiver:
        report = build_report(video, ctx, kb=kb, perceiver=perceiver)
        spans_in_report = _spans([(e.label, e.start_s, e.end_s) for e in report.events])
        with ClipIndex(ctx) as library:
            walkers = {d.person_id for d in library.detections(report.video.sha256)}
        # The video exercises the rule: overlapping walks of different people kept apart.
        assert len(walkers) >= 3
        assert len(spans_in_report["walk"]) == len(walkers)
        predictor = PerceptionPredictor(ctx, perceiver=perceiver, kb=kb)
        classified = _spans([(e.label, e.start_s, e.end_s) for e in predictor.events(str(video))])
        assert classified == spans_in_report  # a fresh perception pass, the same events
        service = AgentService(ctx, kb=kb, perceiver=perceiver)
        try:
            for label, spans in spans_in_report.items():
                name = kb.get(label).name
                item = Item(media=video.name, path=str(video), source=video.name, query=name)
                grounded = _ground_with_index(ctx, kb, item, perceiver=perceiver)
                episodes = json.loads(grounded.raw)["episodes"]
                assert [(a, b) for a, b, _ in episodes] == spans, label
                reply = service.ask(video, f"How many times is there {name.lower()}?")
                assert [(e.start_s, e.end_s) for e in reply.evidence if e.label == label] == spans
                times = "time" if len(spans) == 1 else "times"
                assert f"{name}: {len(spans)} {times}" in reply.answer, reply.answer
        finally:
            service.close()


def _spans(rows: list[tuple[str, float, float]]) -> dict[str, list[tuple[float, float]]]:
    found: dict[str, list[tuple[float, float]]] = {}
    for label, start_s, end_s in sorted(rows, key=lambda r: (r[1], r[2])):
        found.setdefault(label, []).append((start_s, end_s))
    return found
