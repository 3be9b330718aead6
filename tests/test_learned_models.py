"""The learned expression classifier and object detector on real frames, their decoding
helpers, and the settings that switch them (Context, `checkable`)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.errors import ConfigError
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver, PerceptionSession, perceive_video
from agent.perception.learned import load_learned_models
from agent.perception.learned.expression import ExpressionClassifier, prepare, square_crop
from agent.perception.learned.manifest import load_manifest
from agent.perception.learned.objects import iou, peaks
from tests.learned_support import frame_at, installed_models_dir

FACE_CLIP = "emotion_neutral_then_happy_pyfeat_single_face.mp4"


@pytest.fixture(scope="module")
def learned():
    return load_learned_models(Context(models_dir=installed_models_dir()))


# --- settings ---------------------------------------------------------------------------------


def test_context_learned_model_settings(monkeypatch, tmp_path):
    for name in ("MODELS_DIR", "LEARNED_MODELS", "OBJECT_FPS", "MIN_OBJECT_SCORE"):
        monkeypatch.delenv(f"BEHAVIOR_AGENT_{name}", raising=False)
    ctx = Context.from_env()
    assert ctx.models_dir == Path(sys.prefix) / "share" / "behavior-agent" / "models"
    assert (ctx.learned_models, ctx.object_fps, ctx.min_object_score) == (True, 1.0, 0.3)
    monkeypatch.setenv("BEHAVIOR_AGENT_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("BEHAVIOR_AGENT_LEARNED_MODELS", "false")
    monkeypatch.setenv("BEHAVIOR_AGENT_OBJECT_FPS", "0.5")
    monkeypatch.setenv("BEHAVIOR_AGENT_MIN_OBJECT_SCORE", "0.45")
    ctx = Context.from_env()
    assert ctx.models_dir == tmp_path / "m"
    assert (ctx.learned_models, ctx.object_fps, ctx.min_object_score) == (False, 0.5, 0.45)
    with pytest.raises(ConfigError, match="Frame rates must be positive"):
        Context(object_fps=0)


def _uncheckable_ids(session: PerceptionSession, kb) -> set[str]:
    return {
        c.id for c in [kb.get(i) for i in kb.ids()] if c.perception and not session.checkable(c)
    }


def test_without_learned_models_their_classes_are_not_checkable(tmp_path):
    from agent.perception.capabilities import calibration
    from agent.perception.detectors import FALLBACK, REQUIRES

    kb = load_knowledge_base()
    classes = [kb.get(i) for i in kb.ids()]
    needing = {c.id for c in classes if c.perception and c.perception.detector in REQUIRES}
    falling_back = {c.id for c in classes if c.perception and c.perception.detector in FALLBACK}
    assert {"happy", "neutral", "drink", "swing"} <= needing
    assert {"happy", "neutral"} <= falling_back and "drink" not in falling_back
    switched_off = {
        k for k, v in calibration().get("classes", {}).items() if v.get("enabled") is False
    }
    # Switched off, and installed nowhere: classes without a fallback drop out; expressions
    # fall back to their action-unit rule; the landmark rules stay.
    for ctx in (Context(learned_models=False), Context(models_dir=tmp_path / "empty")):
        with Perceiver(ctx) as perceiver:
            session = PerceptionSession(perceiver, kb, ctx)
            assert perceiver.learned.expression is None and perceiver.learned.objects is None
            assert _uncheckable_ids(session, kb) == (needing - falling_back) | switched_off
            assert session.rule_for(kb.get("happy")) == "au_prototype"
            assert session.checkable(kb.get("victory")) and session.checkable(kb.get("exercise"))
    assert load_learned_models(Context(models_dir=tmp_path / "empty")).missing == [
        m.id for m in load_manifest().models
    ]
    with Perceiver(Context(models_dir=installed_models_dir())) as perceiver:
        session = PerceptionSession(perceiver, kb, perceiver.ctx)
        assert _uncheckable_ids(session, kb) == switched_off
        assert session.rule_for(kb.get("happy")) == "expression_model"


@pytest.mark.slow
def test_learned_models_off_gives_no_learned_detections(shared_media):
    ctx = Context(learned_models=False)
    with Perceiver(ctx) as perceiver:
        detections = perceive_video(shared_media / FACE_CLIP, ctx, perceiver=perceiver)
        assert perceiver.learned.expression is None
    assert not [d for d in detections if "expression model" in d.cues]
    # Emotions come from the action-unit fallback rule instead, with AU cues.
    emotions = [d for d in detections if d.kind == "emotion"]
    assert emotions and all(d.cues and "expression model" not in d.cues for d in emotions)


# --- expression classifier ----------------------------------------------------------------------


def test_square_crop_pads_past_the_border_with_edge_pixels():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]  # red = column
    frame[:, :, 1] = np.arange(100, dtype=np.uint8)[:, None]  # green = row
    # A 40 x 30 px box in the top-right corner, 10 px over the right and top edges.
    crop = square_crop(frame, [0.85, -0.1, 0.2, 0.3], margin=1.0)
    assert crop.shape == (40, 40, 3)  # square, side = the longer box side
    assert crop[:, -1, 0].tolist() == [199] * 40  # columns past the edge repeat the last one
    assert crop[0, :, 1].tolist() == [0] * 40 and crop[-1, 0, 1] == 24  # rows 0 .. 24
    assert crop[20, 0, 0] == 170  # the crop starts at column 170 (centre 190, side 40)
    # Inside the frame: the box (50 x 50 px, centre 75, 50) grown by the margin, no padding.
    inside = square_crop(frame, [0.25, 0.25, 0.25, 0.5], margin=1.2)
    assert inside.shape == (60, 60, 3) and inside[0, 0, 0] == 45 and inside[0, 0, 1] == 20
    assert inside[-1, -1, 0] == 104 and inside[-1, -1, 1] == 79


def test_prepare_matches_each_models_input(learned):
    crop = np.random.default_rng(0).integers(0, 256, (90, 90, 3), dtype=np.uint8)
    fer, facex = (load_manifest().get(i) for i in ("expression_fer", "expression_facex"))
    grey = prepare(crop, fer)
    assert grey.shape == (64, 64, 1) and grey.min() >= -1.0 and grey.max() <= 1.0
    assert grey.min() < -0.5 and grey.max() > 0.5
    colour3 = prepare(crop, facex)
    assert colour3.shape == (200, 200, 3) and colour3.min() >= 0.0 and colour3.max() <= 1.0
    assert np.array_equal(colour3[..., 0], colour3[..., 2])  # grey repeated in 3 channels


@pytest.fixture(scope="module")
def face_frames(shared_media):
    """(frame, face box from the real Perceiver) at 0.2 s (neutral) and 1.5 s (smiling)."""
    out = {}
    with Perceiver(Context()) as perceiver:
        for time_s in (0.2, 1.5):
            frame = frame_at(shared_media / FACE_CLIP, time_s)
            landmarks = perceiver.process(frame, time_s, still=True)
            out[time_s] = (frame, landmarks.persons[0].face_box)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("time_s", "expected"), [(0.2, "neutral"), (1.5, "happy")])
def test_expression_on_a_real_face(learned, face_frames, time_s, expected):
    frame, box = face_frames[time_s]
    probabilities = learned.expression.classify(frame, box)
    assert set(probabilities) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(probabilities, key=probabilities.get) == expected, probabilities
    assert probabilities[expected] > 0.6, probabilities


@pytest.mark.slow
def test_expression_is_the_mean_of_both_models(learned, face_frames):
    frame, box = face_frames[1.5]
    models_dir = installed_models_dir()
    singles = [
        ExpressionClassifier([spec], models_dir).classify(frame, box)
        for spec in load_manifest().by_task("expression")
    ]
    assert len(singles) == 2
    ensemble = learned.expression.classify(frame, box)
    for label, p in ensemble.items():
        assert p == pytest.approx((singles[0][label] + singles[1][label]) / 2, abs=1e-6), label


# --- object detector ---------------------------------------------------------------------------


@pytest.mark.slow
def test_detector_finds_pedestrians(learned, shared_media):
    frame = frame_at(shared_media / "scene_pedestrians_walking_opencv_vtest.avi", 10.0)
    found = learned.objects.detect(frame)
    people = [o for o in found if o.label == "person"]
    assert len(people) >= 3, found
    for seen in found:
        x, y, w, h = seen.box
        assert x >= 0.0 and y >= 0.0 and w > 0 and h > 0 and x + w <= 1.0 and y + h <= 1.0
        assert seen.score >= 0.3
    # Pedestrians are upright: their boxes are taller than wide in pixels.
    aspect = frame.shape[1] / frame.shape[0]
    assert sum(o.box[3] > o.box[2] * aspect for o in people) >= 3
    scores = [o.score for o in found]
    assert scores == sorted(scores, reverse=True)
    for i, a in enumerate(people):
        assert all(iou(a.box, b.box) < 0.5 for b in people[i + 1 :])


def test_peaks_finds_planted_maxima_in_order():
    heatmap = np.zeros((20, 30, 3), np.float32)
    planted = [(5, 7, 1, 0.9), (15, 22, 0, 0.7), (3, 25, 2, 0.5)]
    ys, xs = np.mgrid[0:20, 0:30]
    for y, x, channel, score in planted:
        # A blob: its neighbours are high too, but only its centre is a 3 x 3 maximum.
        blob = score * np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / 4.0)
        heatmap[:, :, channel] = np.maximum(heatmap[:, :, channel], blob)
    found_y, found_x, classes, scores = peaks(heatmap, top_k=3)
    assert list(zip(found_y.tolist(), found_x.tolist(), classes.tolist(), strict=True)) == [
        (y, x, c) for y, x, c, _ in planted
    ]
    np.testing.assert_allclose(scores, [s for *_, s in planted], rtol=1e-6)
    # Asked for more, the next ones are far weaker than any planted peak.
    _, _, _, more = peaks(heatmap, top_k=10)
    assert more[:3].tolist() == scores.tolist() and more[3:].max() < 0.05


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0.1, 0.1, 0.2, 0.2), (0.1, 0.1, 0.2, 0.2), 1.0),
        ((0.0, 0.0, 0.2, 0.2), (0.5, 0.5, 0.2, 0.2), 0.0),
        ((0.0, 0.0, 0.2, 0.2), (0.1, 0.0, 0.2, 0.2), 1 / 3),  # half overlap
        ((0.0, 0.0, 0.4, 0.4), (0.1, 0.1, 0.2, 0.2), 0.25),  # contained
        ((0.0, 0.0, 0.2, 0.2), (0.2, 0.0, 0.2, 0.2), 0.0),  # touching edges
        ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), 0.0),  # empty boxes
    ],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)
