"""Honest answers on the real media with real perception: behaviors that are absent are said to
be not seen, first; behaviors the offline backend cannot check are declared, with no times."""

import re
from pathlib import Path

import pytest

from agent.api import AgentService
from agent.context import Context
from agent.loop.answering import lower_name
from agent.perception.capabilities import capabilities
from agent.timefmt import format_span

pytestmark = pytest.mark.slow

THUMB = "gesture_thumb_up_mediapipe_samples_test_video.mp4"
SMILE = "emotion_neutral_then_happy_pyfeat_single_face.mp4"
ANGER = "emotion_anger_cremad_1001_DFA_ANG_XX.mp4"
YOGA = "action_yoga_askanything.mp4"
WRESTLING = "action_arm_wrestling_mmaction2_demo.mp4"

# (video, question, the absent class it asks about): every kind, checked by learned models
# (expressions, objects) and by landmark rules. None of these happens in its video.
ABSENT = [
    (THUMB, "When does she look angry?", "angry"),
    (THUMB, "When is she afraid?", "fear"),
    (THUMB, "When does she give a thumbs down?", "thumbs_down"),
    (THUMB, "When does she walk?", "walk"),
    (SMILE, "When does he make a victory sign?", "victory"),
    (SMILE, "When does he make a fist?", "fist"),
    (SMILE, "When does he wave?", "wave"),
    (ANGER, "When does he run?", "run"),
    (ANGER, "When does he fall?", "fall"),
    (YOGA, "When does she drink?", "drink"),
    (YOGA, "When does she use her phone?", "use_phone"),
    (WRESTLING, "When does he smile?", "happy"),
]
CLOCK = re.compile(r"\d+:\d{2}(?:\.\d)?")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One library for the module: each video is indexed at its first question, then reused."""
    home = tmp_path_factory.mktemp("abstention_home")
    made = AgentService(Context.from_env(home=home, backend="perception"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def checkable(service) -> dict[str, bool]:
    return {k: c.checkable for k, c in capabilities(service.kb, service.ctx).items()}


def test_absent_behaviors_are_said_to_be_not_seen_first(service, shared_media, checkable):
    first_lines = []
    for video, question, class_id in ABSENT:
        reply = service.ask(shared_media / video, question)
        duration_s = service.index_video(shared_media / video).duration_s
        name = lower_name(service.kb.get(class_id).name)
        if checkable[class_id]:
            expected = f"I did not see {name} in {format_span(0.0, duration_s, 1)}"
        else:  # switched off by calibration, or its learned model is not installed
            expected = "The offline backend cannot recognise"
        first_lines.append(f"{video}: {question} -> {reply.answer.split('. ')[0].rstrip('.')}.")
        assert reply.answer.startswith(expected), (question, reply.answer)
        assert reply.found is False and reply.evidence == [], (question, reply.answer)
        assert [a.id for a in reply.asked] == [class_id]
        assert all(e.label != class_id for e in reply.other_evidence)
    print("\n".join(first_lines))
    # The not-seen path itself, not only declarations: most of these classes are checkable.
    assert sum(checkable[c] for _, _, c in ABSENT) >= 10


def test_yes_no_about_an_absent_gesture_says_no(service, shared_media, checkable):
    reply = service.ask(shared_media / SMILE, "Does he give a thumbs down?")
    assert checkable["thumbs_down"], "thumbs_down is a landmark rule"
    assert reply.answer.startswith("No, not seen: I did not see thumbs down in 00:00.0–00:02.4")
    assert reply.found is False and reply.evidence == []


def test_a_rule_switched_off_by_calibration_is_declared_not_guessed(
    service, shared_media, checkable
):
    reply = service.ask(shared_media / SMILE, "Does he touch his face?")
    assert not checkable["face_touch"], "calibration switched face_touch off"
    assert reply.answer.startswith(
        "The offline backend cannot recognise touch his face (class: face touching)"
    )
    assert "switched off" in reply.answer and not CLOCK.search(reply.answer)
    assert reply.found is False and reply.evidence == []


def test_piano_and_bread_are_declared_or_not_seen_with_no_invented_times(
    service, shared_media: Path, checkable
):
    piano = service.ask(shared_media / YOGA, "Is she playing the piano?")
    assert piano.answer.startswith(
        "The offline backend cannot recognise playing the piano (class: playing an instrument)"
    )
    assert "BEHAVIOR_AGENT_BACKEND=videollama3" in piano.answer
    assert not CLOCK.search(piano.answer) and piano.evidence == piano.other_evidence == []
    bread = service.ask(shared_media / YOGA, "When does he bake bread?")
    assert [a.id for a in bread.asked] == ["cook"]  # "baking" is a synonym of cooking
    assert bread.found is False and bread.evidence == []
    assert checkable["cook"], "the object detector is installed: cooking can be looked for"
    assert bread.answer.startswith("I did not see cooking in 00:00.0–00:10.0")
    print(piano.answer, bread.answer, sep="\n")


def test_an_open_question_with_no_action_seen_says_what_could_not_be_seen(service, shared_media):
    """ "What is she doing?" where no action was detected: not an action guessed from another
    kind, but "no action", the actions the backend is blind to, then the other observations."""
    reply = service.ask(shared_media / THUMB, "What is the person doing?")
    assert reply.answer.startswith("I did not see any action in 00:00.0–00:07.8."), reply.answer
    assert reply.found is False and reply.evidence == []
    blind = reply.answer.split("may have happened unseen: ", 1)[1].split(". To check them", 1)[0]
    assert "playing an instrument" in blind and "applying makeup" in blind, reply.answer
    assert "thumbs up" not in blind  # a checkable class is never listed as unseeable
    other = reply.answer.split("Seen instead (other observations, not the answer): ", 1)[1]
    assert "thumbs up at 00:02" in other, reply.answer
    assert "thumbs_up" in {e.label for e in reply.other_evidence}
    assert all(e.kind != "action" for e in reply.other_evidence)
