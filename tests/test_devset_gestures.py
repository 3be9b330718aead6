"""Everyday footage without hand signs (../shared/devset): no gesture is claimed there, and a
yes/no question about a stop sign is answered "No, not seen"."""

import pytest

from agent.api import AgentService
from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver, perceive_video
from agent.perception.runner import perceive_path
from agent.perception.session import PerceptionSession
from tests.conftest import devset_rows

pytestmark = pytest.mark.slow

# An archer drawing a bow (UCF101 via PaddleVideo) and hands pouring coffee (SAM 2 demo).
SIGN_FREE = ("a05.avi", "a36.mp4")


def _sign_free_clip(devset, name):
    row = next(r for r in devset_rows(devset, "actions") if r["file"] == name)
    assert row["hand_signs"] == "none", row
    return devset / "actions" / name


@pytest.fixture(scope="module")
def perceiver():
    with Perceiver(Context()) as shared:
        yield shared


@pytest.mark.parametrize("name", SIGN_FREE)
def test_sign_free_clip_yields_no_gesture(devset, perceiver, name):
    dets = perceive_video(_sign_free_clip(devset, name), Context(), perceiver=perceiver)
    gestures = [(d.label, d.start_s, d.end_s, d.cues) for d in dets if d.kind == "gesture"]
    assert gestures == [], gestures


def test_stop_sign_question_on_sign_free_clips_says_no(devset, tmp_path):
    service = AgentService(Context.from_env(home=tmp_path / "home", backend="perception"))
    try:
        for name in SIGN_FREE:
            reply = service.ask(_sign_free_clip(devset, name), "Does anyone make a stop sign?")
            assert reply.answer.startswith("No, not seen"), (name, reply.answer)
            assert reply.found is False and reply.evidence == [], (name, reply.answer)
    finally:
        service.close()


def _gesture_clip(devset, name):
    rows = [r for r in devset_rows(devset, "gestures") if r["file"] == name]
    assert rows, name
    return devset / "gestures" / name, rows


# HaGRID-dynamic swipe demos (ai-forever/dynamic_gestures): a stop palm held up, swept down
# and held there (g13); an L of thumb and index held up, swept down and up again (g15). Each
# hold is a still hand at any frame rate; the clip is a swipe, labelled `other` throughout.
SWIPES = ("g13.mp4", "g15.mp4")


@pytest.mark.parametrize("name", SWIPES)
def test_swipe_demo_yields_no_hand_sign(devset, perceiver, name):
    path, rows = _gesture_clip(devset, name)
    assert {r["label"] for r in rows} == {"other"}, rows
    # The knowledge base's own thresholds, not the devset fit (which has seen these clips);
    # they run the switched-off classes too, so only hand shapes are looked at.
    ctx = Context(calibrate_confidence=False)
    kb = load_knowledge_base(ctx)
    dets = perceive_video(path, ctx, kb, perceiver=perceiver)
    shapes = {
        i.id for i in kb.by_kind("gesture") if i.perception and i.perception.detector == "hand_sign"
    }
    signs = [(d.label, d.start_s, d.end_s, d.cues) for d in dets if d.label in shapes]
    assert signs == [], signs


def test_fist_held_before_a_plain_background_is_found(devset, perceiver):
    # The ASL test clip (tensorflow/tfjs-models): one hand, no body; holistic reads a body in
    # the hand and gives no hand landmarks, so the palm detector has to look for it.
    path, rows = _gesture_clip(devset, "g07.mp4")
    fist = next(r for r in rows if r["label"] == "fist")
    dets = perceive_video(path, Context(), perceiver=perceiver)
    found = [d for d in dets if d.label == "fist"]
    assert found, [(d.label, d.start_s, d.end_s) for d in dets]
    assert found[0].start_s >= float(fist["start_s"]) - 0.5, found


def test_offered_palm_is_an_open_palm_not_a_stop_sign(devset, perceiver):
    # A hand held out palm up, fingers together pointing at the camera, thumb half bent
    # (google-ai-edge/mediapipe-samples): the knowledge base's open palm ("often upturned and
    # offered"), not its stop sign (vertical). The KB's own thresholds, not the devset fit.
    path, rows = _gesture_clip(devset, "g05.mp4")
    palm = next(r for r in rows if r["label"] == "open_palm")
    ctx = Context(calibrate_confidence=False)
    dets = perceive_video(path, ctx, load_knowledge_base(ctx), perceiver=perceiver)
    shown = [(d.label, d.start_s, d.end_s) for d in dets if d.kind == "gesture"]
    assert not [d for d in dets if d.label == "stop_sign"], shown
    found = [d for d in dets if d.label == "open_palm"]
    assert found, shown
    assert found[0].start_s >= float(palm["start_s"]) - 0.5, shown
    assert max(d.end_s - d.start_s for d in found) >= 2.0, shown


def test_fist_through_a_clip_shorter_than_its_hold_is_found(devset, perceiver):
    # A 1 s HaGRID-dynamic demo (ai-forever/dynamic_gestures, "clicks"): a fist held up at the
    # camera, the index tapping once between two samples. A fist must be held 2 s (the devset
    # fit), longer than the clip; a shape in every sample of footage that short is held as
    # long as the footage shows.
    path, rows = _gesture_clip(devset, "g10.mp4")
    fists = [r for r in rows if r["label"] == "fist"]
    dets = perceive_video(path, Context(), perceiver=perceiver)
    found = [d for d in dets if d.label == "fist"]
    assert found, [(d.label, d.start_s, d.end_s) for d in dets]
    for event in fists:  # one fist through the clip covers both labelled fists
        start_s, end_s = float(event["start_s"]), float(event["end_s"])
        assert any(d.start_s < end_s and d.end_s > start_s for d in found), (event, found)


def test_a_closer_look_at_part_of_a_clip_keeps_the_hold(devset, perceiver):
    # The same fist seen over its first half only is a span of the video, not all of it:
    # there the 2 s hold stands (the rest of the video may show the hand open).
    path, _ = _gesture_clip(devset, "g10.mp4")
    dets = perceive_path(path, Context(), perceiver=perceiver, end_s=0.5, fps=4.0)
    assert not [d for d in dets if d.label == "fist"], dets


def _hand_shapes(kb) -> set[str]:
    return {
        i.id for i in kb.by_kind("gesture") if i.perception and i.perception.detector == "hand_sign"
    }


@pytest.mark.parametrize("name", ("a05.avi", "a39.mp4"))
def test_a_shape_glimpsed_in_one_sample_is_no_sign_at_any_hold(devset, perceiver, name):
    # The archer's drawing hand closes for one sample (a05); hands at work on a table open
    # flat for one sample, twice (a39, SAM 2 demo). With the shortest hold the devset fit
    # tries (0.3 s, less than one sample at 2 fps) a sign still needs two samples.
    sessions = []

    def keep(*args, **options):
        sessions.append(PerceptionSession(*args, **options))
        return sessions[-1]

    ctx = Context(calibrate_confidence=False)
    kb = load_knowledge_base(ctx)
    perceive_path(_sign_free_clip(devset, name), ctx, kb, perceiver, session_factory=keep)
    shortest = dict.fromkeys(_hand_shapes(kb), {"min_duration_s": 0.3})
    dets = sessions[0].detections_of(sessions[0].score_classes(), shortest)
    signs = [(d.label, d.start_s, d.end_s, d.cues) for d in dets if d.label in shortest]
    assert signs == [], signs


def test_a_hand_opening_out_of_an_ok_sign_is_no_open_palm(devset, perceiver):
    # HaGRID-dynamic "drag" demo (g21): an OK sign opens into a spread hand whose index stays
    # splayed off toward the thumb (33-35 deg from the middle finger; open palms on the
    # devset: 12-19). The knowledge base's own thresholds, not the devset fit.
    path, rows = _gesture_clip(devset, "g21.mp4")
    assert {r["label"] for r in rows} == {"other"}, rows
    ctx = Context(calibrate_confidence=False)
    dets = perceive_video(path, ctx, load_knowledge_base(ctx), perceiver=perceiver)
    palms = [(d.start_s, d.end_s, d.cues) for d in dets if d.label == "open_palm"]
    assert palms == [], palms
