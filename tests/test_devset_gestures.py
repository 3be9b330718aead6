"""Everyday footage without hand signs (../shared/devset): no gesture is claimed there, and a
yes/no question about a stop sign is answered "No, not seen"."""

import pytest

from agent.api import AgentService
from agent.context import Context
from agent.perception import Perceiver, perceive_video
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
