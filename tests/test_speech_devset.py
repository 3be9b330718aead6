"""Everyday clips of ../shared/devset: talking read from the lips (`talk`), and a talking face
that is not smiling or gasping read as neutral, not as the expressions its mouth imitates."""

import pytest

from agent.api import AgentService
from agent.context import Context
from agent.perception import Perceiver
from agent.perception.runner import perceive_path
from tests.conftest import devset_rows
from tests.learned_support import installed_models_dir

pytestmark = pytest.mark.slow

# Neutral talking heads: MEAD W009 (4 s) and a public address (20 s).
NEUTRAL_TALKING = ("emotions/e33.mp4", "emotions/e38.mp4")
# Talking heads of any expression.
TALKING = ("emotions/e32.mp4", "emotions/e38.mp4", "emotions/e24.mp4")
# Faces in view that do not speak: a smiling head-pose clip, a webcam user swiping, a photo.
SILENT = ("actions/a32.mp4", "gestures/g13.mp4", "emotions/e55.jpg")


@pytest.fixture(scope="module")
def perceived(devset):
    """{devset name: detections}, each clip perceived once with the default settings."""
    ctx = Context(models_dir=installed_models_dir())
    names = sorted({*NEUTRAL_TALKING, *TALKING, *SILENT})
    with Perceiver(ctx) as perceiver:
        return {name: perceive_path(devset / name, ctx, perceiver=perceiver) for name in names}


def duration_s(devset, name: str) -> float:
    kind, file = name.split("/")
    return float(next(r for r in devset_rows(devset, kind) if r["file"] == file)["duration_s"])


@pytest.mark.parametrize("name", NEUTRAL_TALKING)
def test_a_neutral_talking_face_reads_no_expression_over_most_of_its_length(
    devset, perceived, name
):
    label = next(r for r in devset_rows(devset, "emotions") if name.endswith(r["file"]))["label"]
    assert label == "neutral"
    found = perceived[name]
    other = [d for d in found if d.kind == "emotion" and d.label != "neutral"]
    summary = [(d.label, d.start_s, d.end_s, d.confidence) for d in found if d.kind == "emotion"]
    assert sum(d.end_s - d.start_s for d in other) <= 0.1 * duration_s(devset, name), summary
    assert any(d.label == "talk" for d in found), summary


@pytest.mark.parametrize("name", TALKING)
def test_a_talking_clip_yields_talk_over_most_of_it(devset, perceived, name):
    talk = [d for d in perceived[name] if d.label == "talk"]
    assert talk, [(d.label, d.start_s, d.end_s) for d in perceived[name]]
    assert {d.kind for d in talk} == {"action"}
    assert sum(d.end_s - d.start_s for d in talk) >= 0.5 * duration_s(devset, name), talk
    assert "lips opened and closed" in talk[0].cues


@pytest.mark.parametrize("name", SILENT)
def test_a_face_that_does_not_speak_yields_no_talk(perceived, name):
    assert not [d for d in perceived[name] if d.label == "talk"], perceived[name]


def test_the_agent_answers_when_he_speaks(devset, tmp_path):
    service = AgentService(Context.from_env(home=tmp_path / "home", backend="perception"))
    try:
        reply = service.ask(devset / "emotions/e32.mp4", "When does he speak?")
    finally:
        service.close()
    assert reply.evidence, reply.answer
    assert {e.label for e in reply.evidence} == {"talk"}, reply.answer
    assert "I found no" not in reply.answer
