"""Report data from constructed detections: merging, totals, ordering, notable moments, extras."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.context import Context
from agent.index import ClipRecord
from agent.report import assemble_report, write_report
from agent.report.charts import overlap_lanes
from agent.report.events import label_totals, notable_moments, report_events
from agent.report.frames import KEY_FRAME_SIDE
from agent.report.model import ReportData
from agent.state import Clip
from agent.video import probe
from agent.vlm.reply_times import mentions_time
from tests.report_support import ScriptedVLM, StubKB, detection, sample_detections
from tests.synthetic import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("report") / "two_scenes.mp4", [6.0, 6.0])


@pytest.fixture
def ctx(tmp_path) -> Context:
    return Context(home=tmp_path / "home")


def merged(detections, duration_s: float, gap_s: float):
    """Report events with the one merge rule, at a given gap (`Context.event_merge_gap_s`)."""
    return report_events(detections, duration_s, Context(event_merge_gap_s=gap_s))


def clips_of(duration_s: float) -> list[Clip]:
    return [Clip(clip_id=0, start_s=0.0, end_s=6.0), Clip(clip_id=1, start_s=6.0, end_s=duration_s)]


def test_detections_closer_than_the_gap_merge_into_one_event():
    events = merged(
        [
            detection("emotion", "happy", 0.5, 2.0, 0.8, cues="AU12 0.8"),
            detection("emotion", "happy", 2.5, 4.0, 0.6, cues="AU12 0.6"),
            detection("emotion", "happy", 2.8, 3.0, 0.6, cues="AU12 0.6"),  # repeated cue
        ],
        duration_s=12.0,
        gap_s=1.0,
    )
    assert len(events) == 1
    event = events[0]
    assert (event.start_s, event.end_s, event.duration_s) == (0.5, 4.0, 3.5)
    assert event.detections == 3
    # Duration-weighted: (1.5 * 0.8 + 1.5 * 0.6 + 0.2 * 0.6) / 3.2
    assert event.confidence == pytest.approx((1.2 + 0.9 + 0.12) / 3.2, abs=1e-3)
    assert event.peak_confidence == 0.8
    assert event.cues == ["AU12 0.8", "AU12 0.6"]
    assert event.key_frame_s == pytest.approx(1.25)  # middle of the most confident detection


def test_gaps_people_and_labels_keep_events_apart():
    events = merged(
        [
            detection("emotion", "happy", 0.0, 1.0, person_id=0),
            detection("emotion", "happy", 2.5, 3.0, person_id=0),  # gap 1.5 s > 1.0 s
            detection("emotion", "happy", 0.2, 1.0, person_id=1),  # another person
            detection("emotion", "sad", 0.5, 1.0, person_id=0),  # another label
        ],
        duration_s=10.0,
        gap_s=1.0,
    )
    spans = [(e.label, e.person_id, e.start_s, e.end_s) for e in events]
    assert spans == [
        ("happy", 0, 0.0, 1.0),
        ("happy", 1, 0.2, 1.0),
        ("sad", 0, 0.5, 1.0),
        ("happy", 0, 2.5, 3.0),
    ]


def test_events_are_in_time_order_with_kind_order_on_ties_and_sequential_ids():
    events = merged(
        [
            detection("action", "walk", 1.0, 5.0),
            detection("gesture", "wave", 1.0, 2.0),
            detection("emotion", "happy", 1.0, 3.0),
            detection("emotion", "sad", 0.2, 0.6),
        ],
        duration_s=10.0,
        gap_s=0.5,
    )
    assert [(e.event_id, e.label) for e in events] == [
        ("e001", "sad"),
        ("e002", "happy"),
        ("e003", "wave"),
        ("e004", "walk"),
    ]


def test_times_are_clamped_to_the_video_and_outside_detections_dropped():
    events = merged(
        [
            detection("gesture", "wave", -1.0, 2.0),
            detection("gesture", "thumbs_up", 8.0, 15.0),
            detection("action", "walk", 12.0, 14.0),  # wholly after the end
        ],
        duration_s=10.0,
        gap_s=1.0,
    )
    assert [(e.label, e.start_s, e.end_s) for e in events] == [
        ("wave", 0.0, 2.0),
        ("thumbs_up", 8.0, 10.0),
    ]


def test_totals_give_time_share_per_emotion_and_count_and_mean_per_gesture():
    events = merged(
        [
            detection("emotion", "happy", 0.0, 2.0, person_id=0),
            detection("emotion", "happy", 1.0, 3.0, person_id=1),  # overlaps: union is 3 s
            detection("emotion", "sad", 5.0, 9.0),
            detection("gesture", "wave", 0.0, 1.0),
            detection("gesture", "wave", 4.0, 7.0),
            detection("gesture", "thumbs_up", 2.0, 2.5),
        ],
        duration_s=10.0,
        gap_s=0.5,
    )
    totals = {(t.kind, t.label): t for t in label_totals(events, 10.0)}
    assert totals[("emotion", "happy")].total_s == 3.0
    assert totals[("emotion", "happy")].share == pytest.approx(0.3)
    assert totals[("emotion", "happy")].count == 2
    assert totals[("emotion", "sad")].share == pytest.approx(0.4)
    assert totals[("gesture", "wave")].count == 2
    assert totals[("gesture", "wave")].mean_duration_s == pytest.approx(2.0)
    assert totals[("gesture", "thumbs_up")].count == 1
    order = [(t.kind, t.label) for t in label_totals(events, 10.0)]
    # emotions by time (sad 4 s before happy 3 s), then gestures by count
    assert order == [
        ("emotion", "sad"),
        ("emotion", "happy"),
        ("gesture", "wave"),
        ("gesture", "thumbs_up"),
    ]


def test_notable_moments_are_strong_emotion_onsets_and_rare_gestures():
    detections = [
        detection("emotion", "happy", 1.0, 2.0, 0.9),
        detection("emotion", "neutral", 3.0, 5.0, 0.95),  # never "strong"
        detection("emotion", "sad", 6.0, 7.0, 0.4),  # weak
    ]
    detections += [detection("gesture", "wave", 10.0 + 3 * i, 11.0 + 3 * i) for i in range(11)]
    detections += [detection("gesture", "thumbs_up", 50.0, 51.0)]
    events = merged(detections, duration_s=60.0, gap_s=0.5)
    moments = notable_moments(events, strong_confidence=0.7)
    assert [(m.reason, m.label, m.time_s) for m in moments] == [
        ("strong_emotion_onset", "happy", 1.0),
        ("rare_gesture", "thumbs_up", 50.0),
    ]
    assert moments[1].text == "the only thumbs up among 12 gestures"
    flagged = [e.label for e in events if e.notable]
    assert flagged == ["happy", "thumbs_up"]


def test_assembled_report_links_events_to_knowledge_and_has_charts_and_key_frames(video, ctx):
    info = probe(video, ctx)
    data = assemble_report(info, clips_of(info.duration_s), sample_detections(), ctx, kb=StubKB())
    assert isinstance(data, ReportData)
    assert data.video.name == "two_scenes.mp4" and data.video.sha256 == info.sha256
    assert [e.label for e in data.events] == [
        "happy",
        "thumbs_up",
        "walk",
        "sad",
        "arm wrestling",
    ]
    assert data.timelines == {
        "emotion": ["e001", "e004"],
        "gesture": ["e002"],
        "action": ["e003", "e005"],
    }
    # Every event has an appendix entry; an unknown label gets one saying so.
    for event in data.events:
        assert event.kb_id in data.knowledge
    happy = data.knowledge["happy"]
    assert happy.definition.startswith("A positive emotion")
    assert happy.action_units.startswith("AU6")
    assert [c.id for c in happy.confusions] == ["neutral"]
    assert "typically 0.5–3 s" in happy.temporal
    unknown = data.knowledge["label-arm_wrestling"]
    assert not unknown.in_knowledge_base
    # Segments hold the events that overlap them.
    assert [s.event_ids for s in data.segments] == [["e001", "e002"], ["e003", "e004", "e005"]]
    assert set(data.charts.values()) <= set(data.images)
    assert data.images["timeline.png"].startswith(b"\x89PNG")
    assert all(e.key_frame in data.images for e in data.events)
    assert set(data.colors) == {e.label for e in data.events}


def test_key_frame_is_the_frame_at_the_event_with_its_box_drawn(video, ctx):
    info = probe(video, ctx)
    data = assemble_report(info, clips_of(info.duration_s), sample_detections(), ctx, kb=StubKB())
    thumbs = next(e for e in data.events if e.label == "thumbs_up")
    image = np.asarray(Image.open(io.BytesIO(data.images[thumbs.key_frame])).convert("RGB"))
    assert max(image.shape[:2]) <= KEY_FRAME_SIDE
    assert image.shape[:2] == (240, 320)  # the synthetic video's size (below the cap)
    # The box edge is drawn in the label's colour at the bbox's left edge.
    colour = np.array([int(data.colors["thumbs_up"][i : i + 2], 16) for i in (1, 3, 5)])
    x = int(0.5 * 320)
    column = image[int(0.6 * 240) : int(0.75 * 240), x - 1 : x + 2].reshape(-1, 3).astype(int)
    assert np.abs(column - colour).sum(axis=1).min() < 60
    # First scene of the synthetic video is red-dominant (BGR (40, 40, 200)).
    corner = image[:20, :20].reshape(-1, 3).mean(axis=0)
    assert corner[0] > corner[2] + 80


def test_key_frames_stop_at_the_cap_most_notable_first(video, ctx):
    info = probe(video, ctx)
    capped = ctx.replace(report_max_key_frames=1)
    data = assemble_report(info, [], sample_detections(), capped, kb=StubKB())
    with_frames = [e.label for e in data.events if e.key_frame]
    # The notable strong smile (peak 0.8) wins over the more confident thumbs-up (0.9).
    assert with_frames == ["happy"]


def test_six_different_gestures_are_not_rare_but_one_among_ten_is():
    six = [detection("gesture", f"g{i}", 2.0 * i, 2.0 * i + 1) for i in range(6)]
    assert notable_moments(merged(six, 60.0, 0.5), 0.7) == []
    ten = [detection("gesture", "wave", 2.0 * i, 2.0 * i + 1) for i in range(9)]
    ten.append(detection("gesture", "thumbs_up", 40.0, 41.0))
    moments = notable_moments(merged(ten, 60.0, 0.5), 0.7)
    assert [(m.label, m.text) for m in moments] == [
        ("thumbs_up", "the only thumbs up among 10 gestures")
    ]


def test_narratives_are_model_written_per_segment_with_the_evidence(video, ctx):
    info = probe(video, ctx)
    vlm = ScriptedVLM(fail_on_call=2)
    kb = StubKB()
    data = assemble_report(
        info, clips_of(info.duration_s), sample_detections(), ctx, kb=kb, vlm=vlm
    )
    assert len(vlm.calls) == 2
    first, second = data.segments
    assert first.narrative == "The person smiles (call 1)."
    assert first.model_written and first.narrative_model == "test/scripted-vlm"
    # The failing call leaves its segment without a narrative instead of failing the report.
    assert second.narrative == "" and not second.model_written
    evidence = vlm.calls[0]["evidence"]
    assert "- emotion 'Happiness' (confidence 0.70): AU12 0.8, AU6 0.6; AU12 0.6" in evidence
    assert "thumb up" in evidence
    assert not mentions_time(evidence)  # the model is given no time to repeat or shift
    assert kb.snippet_requests[0] == ["happy", "thumbs_up"]
    frames = vlm.calls[0]["frames"]
    assert frames.timestamps_s.min() >= 0.0 and frames.timestamps_s.max() < 6.0
    # The double is not VideoLLaMA3, so the report does not call it that.
    assert data.provenance.backend == "scripted"
    assert data.provenance.model_id == "test/scripted-vlm"
    assert data.provenance.quantization == "4bit"
    assert any("vision-language model" in limit for limit in data.provenance.limits)


def test_narratives_and_captions_never_quote_a_model_written_time(video, ctx, tmp_path):
    info = probe(video, ctx)  # 12 s long: 99 s and 0:40 are past its end
    vlm = ScriptedVLM(text="At 99 s she waves. She smiles warmly; from 0:40 to 0:45 she nods.")
    clips = [
        ClipRecord(
            clip_id=0, start_s=0.0, end_s=6.0, sha256="x", caption="At 0:45 a man waves. He sits."
        ),
        ClipRecord(clip_id=1, start_s=6.0, end_s=12.0, sha256="x"),
    ]
    data = assemble_report(info, clips, sample_detections(), ctx, kb=StubKB(), vlm=vlm)
    assert [s.narrative for s in data.segments] == ["She smiles warmly."] * 2
    assert data.segments[0].caption == "He sits."
    for kind in ("html", "md"):
        page = write_report(data, kind, tmp_path / f"r.{kind}").read_text(encoding="utf-8")
        assert "99 s" not in page and "0:40" not in page and "0:45" not in page
    only_times = ScriptedVLM(text="From 0:01 to 0:02 she frowns. At 3 seconds she nods.")
    data = assemble_report(
        info, clips_of(info.duration_s), sample_detections(), ctx, kb=StubKB(), vlm=only_times
    )
    assert [(s.narrative, s.model_written) for s in data.segments] == [("", False)] * 2


def test_provenance_states_settings_versions_time_and_limits(video, ctx):
    info = probe(video, ctx)
    data = assemble_report(info, [], [], ctx, kb=StubKB(), key_frames=False)
    provenance = data.provenance
    assert provenance.backend == "perception"
    assert provenance.sampling["sample_fps"] == ctx.sample_fps
    assert provenance.software["python"].startswith("3.11")
    assert provenance.software["mediapipe"] == "0.10.14"
    assert provenance.generated_at.endswith("+00:00")
    assert any("not measurements of felt emotion" in limit for limit in provenance.limits)
    assert any("No vision-language model" in limit for limit in provenance.limits)
    assert data.events == [] and data.notable == []
    assert data.timelines == {"emotion": [], "gesture": [], "action": []}


def test_a_still_image_reports_events_at_time_zero(tmp_path, ctx):
    image_path = tmp_path / "hand.png"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(image_path)
    info = probe(image_path, ctx)
    assert info.duration_s == 0.0 and info.frame_count == 1
    data = assemble_report(
        info,
        [Clip(clip_id=0, start_s=0.0, end_s=0.0)],
        [detection("gesture", "thumbs_up", 0.0, 0.0, 0.9, bbox=[0.1, 0.1, 0.5, 0.5])],
        ctx,
        kb=StubKB(),
    )
    assert data.video.is_image
    assert [(e.start_s, e.end_s) for e in data.events] == [(0.0, 0.0)]
    assert data.totals[0].share is None
    assert data.segments[0].event_ids == ["e001"]
    assert data.images["e001.jpg"].startswith(b"\xff\xd8")


def test_overlapping_events_get_their_own_timeline_lanes():
    events = merged(
        [
            detection("action", "walk", 0.0, 5.0, person_id=1),
            detection("action", "walk", 1.0, 3.0, person_id=2),
            detection("action", "run", 2.0, 4.0, person_id=3),
            detection("action", "walk", 3.5, 6.0, person_id=2),  # lane 1 is free again at 3.5
            detection("action", "walk", 6.0, 8.0, person_id=4),  # everything free at 6.0
        ],
        duration_s=10.0,
        gap_s=0.1,
    )
    lanes = overlap_lanes(events)
    assert [lanes[e.event_id] for e in events] == [0, 1, 2, 1, 0]
    assert max(overlap_lanes(events, max_lanes=2).values()) == 1


def test_key_frame_falls_back_to_the_plain_frame_when_the_overlay_fails(video, ctx, monkeypatch):
    import agent.report.frames as frames_module

    calls = []

    class BrokenPerceiver:
        def __init__(self, ctx):
            calls.append("perceiver")

        def close(self):
            calls.append("closed")

    def broken_overlay(path, time_s, ctx, perceiver=None):
        calls.append(time_s)
        raise RuntimeError("mediapipe graph failed")

    monkeypatch.setattr(
        frames_module, "_overlay_function", lambda: (broken_overlay, BrokenPerceiver)
    )
    info = probe(video, ctx)
    data = assemble_report(info, [], sample_detections(), ctx, kb=StubKB())
    assert calls[0] == "perceiver" and calls[-1] == "closed"  # one perceiver for all frames
    assert calls.count("perceiver") == 1 and len(calls) == 2 + len(data.events)
    assert all(data.images[e.key_frame].startswith(b"\xff\xd8") for e in data.events)
    monkeypatch.setattr(frames_module, "_overlay_function", lambda: None)
    plain = assemble_report(info, [], sample_detections(), ctx, kb=StubKB())
    assert all(e.key_frame for e in plain.events)
