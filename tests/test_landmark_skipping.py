"""Mediapipe is not run on frames where the object detector saw only people too small for
landmarks (a crowd far from the camera), and what is found is what running it on every frame
finds; a close view never skips it (real shared media, real models)."""

import pytest

from agent.context import Context
from agent.perception import session as session_module
from agent.perception.runner import perceive_path
from agent.perception.session import PerceptionSession
from tests.learned_support import installed_models_dir

pytestmark = pytest.mark.slow


def perceived(path, ctx: Context, **options) -> tuple[list, PerceptionSession]:
    sessions: list[PerceptionSession] = []

    def keep(*args, **kwargs):
        sessions.append(PerceptionSession(*args, **kwargs))
        return sessions[-1]

    detections = perceive_path(path, ctx, session_factory=keep, **options)
    return [d.model_dump() for d in detections], sessions[0]


def test_a_far_crowd_skips_landmarks_and_finds_the_same(shared_media, monkeypatch, tmp_path):
    ctx = Context(home=tmp_path, models_dir=installed_models_dir())
    video = shared_media / "scene_pedestrians_walking_opencv_vtest.avi"
    skipping, session = perceived(video, ctx, end_s=30.0)
    assert session.frames_without_landmarks > 0.8 * len(session.frames)
    assert any(d["label"] == "walk" for d in skipping), skipping

    monkeypatch.setattr(session_module, "_SMALL_PEOPLE_MARGIN", 0.0)  # never skip
    every, session = perceived(video, ctx, end_s=30.0)
    assert session.frames_without_landmarks == 0
    assert skipping == every


def test_a_close_view_always_gets_landmarks(shared_media, tmp_path):
    ctx = Context(home=tmp_path, models_dir=installed_models_dir())
    video = shared_media / "gesture_thumb_up_mediapipe_samples_test_video.mp4"
    detections, session = perceived(video, ctx)
    assert session.frames_without_landmarks == 0
    assert any(d["label"] == "thumbs_up" for d in detections), detections
