"""The answer contract with doubles: not seen is said first, other observations stay apart, and
what the backend cannot check is declared with no times and no evidence."""

import re

import pytest

from agent.context import Context
from agent.errors import ConfigError
from agent.state import Answer
from tests.agent_doubles import FakeVLM
from tests.test_agent_graph import DETECTIONS, deps_for, det, run

CLOCK = re.compile(r"\d+:\d{2}")
SWITCH = "switch to a backend that can: set BEHAVIOR_AGENT_BACKEND=videollama3"


@pytest.fixture(autouse=True)
def no_calibration(monkeypatch):
    """The doubles' classes are checked as rules, whatever the shipped calibration switches off."""
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})


def ask(question: str, deps) -> tuple[Answer, dict]:
    final = run(question, deps)
    return Answer.model_validate(final["answer"]), final


def test_asked_class_not_seen_is_said_first_and_other_classes_follow_apart():
    sad_free = [*DETECTIONS, det("happy", "emotion", 1.5, 2.0, 0.7)]
    reply, _ = ask("When does she look sad?", deps_for(sad_free))
    assert reply.answer.startswith("I did not see sad in 00:00.0–00:30.0, so I cannot give a time.")
    assert reply.found is False and reply.evidence == []
    assert "Seen instead (other observations, not the answer): happy at 00:01.5–00:02.0, " in (
        reply.answer
    )
    assert {e.label for e in reply.other_evidence} == {"happy"}  # emotions only: sad's kind
    assert [(a.id, a.checkable, a.weak) for a in reply.asked] == [("sad", True, False)]


def test_yes_no_not_seen_starts_with_no():
    reply, _ = ask("Does she wave?", deps_for())
    assert reply.answer.startswith("No, not seen: I did not see wave in 00:00.0–00:30.0.")
    assert reply.found is False and reply.evidence == []


def test_found_answers_say_found_and_keep_their_evidence():
    reply, _ = ask("Does she give a thumbs up?", deps_for())
    assert reply.answer.startswith("Yes. Thumbs up at 00:12.0–00:16.0.")
    assert reply.found is True and [e.label for e in reply.evidence] == ["thumbs_up"]
    assert reply.other_evidence == []


def test_how_many_not_seen_counts_zero():
    reply, _ = ask("How many times does she wave?", deps_for())
    assert reply.answer.startswith("I did not see wave in 00:00.0–00:30.0, so the count is 0.")
    assert reply.found is False


def test_class_without_an_offline_rule_is_declared_and_never_searched():
    # A detection under that label in the index must not be reported: the class is not
    # checkable offline, whatever a stray record says.
    stray = [*DETECTIONS, det("play_instrument", "action", 3.0, 6.0, 0.9)]
    deps = deps_for(stray)
    reply, final = ask("Is she playing the piano?", deps)
    assert reply.answer.startswith(
        "The offline backend cannot recognise playing the piano (class: playing an instrument); "
        + SWITCH
    )
    assert "Why: no offline rule can observe it." in reply.answer
    assert reply.found is False and reply.evidence == [] and reply.other_evidence == []
    assert not CLOCK.search(reply.answer)  # no times at all
    assert final["step"] == 0 and deps.index.searches == []  # nothing was searched
    (asked,) = reply.asked
    assert (asked.id, asked.checkable, asked.reason) == (
        "play_instrument",
        False,
        "no offline rule can observe it",
    )


def test_phrase_that_names_no_class_is_declared_not_answered_with_other_classes():
    reply, final = ask("When does he juggle?", deps_for())
    assert reply.answer.startswith("The offline backend cannot recognise juggle; " + SWITCH)
    assert "Why: no knowledge-base class matches it well (closest: " in reply.answer
    assert reply.evidence == [] and reply.other_evidence == [] and not CLOCK.search(reply.answer)
    (asked,) = reply.asked
    assert asked.id is None and asked.phrase == "juggle" and asked.match_score == 0.1
    assert final["step"] == 0


def test_mixed_question_declares_the_uncheckable_part_first_and_answers_the_rest():
    reply, _ = ask("Is he happy or playing the piano?", deps_for())
    first, _, rest = reply.answer.partition(" Why: no offline rule can observe it. ")
    assert first.startswith("The offline backend cannot recognise playing the piano")
    assert rest.startswith("Happy at 00:20.0–00:25.0.")
    assert [e.label for e in reply.evidence] == ["happy"] and reply.found is True
    assert {a.id: a.checkable for a in reply.asked} == {"happy": True, "play_instrument": False}


def test_class_switched_off_by_calibration_is_declared_with_the_reason(monkeypatch):
    off = {"classes": {"wave": {"enabled": False, "reason": "measured precision 0.12 (n=40)"}}}
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: off)
    reply, _ = ask("When does she wave?", deps_for([det("wave", "gesture", 1.0, 2.0)]))
    assert reply.answer.startswith("The offline backend cannot recognise wave; " + SWITCH)
    assert "Why: measured precision 0.12 (n=40)." in reply.answer and reply.evidence == []


def test_thresholds_are_settings_and_a_weak_match_is_reported_weak():
    # The double scores a synonym hit 0.9: below a strong score of 0.95 it is a weak match.
    weak = deps_for(match_strong_score=0.95)
    reply, _ = ask("When does she give a thumbs up?", weak)
    assert reply.answer.startswith(
        'Thumbs up at 00:12.0–00:16.0 (closest class to "thumbs up": thumbs up, weak match 0.90).'
    )
    assert reply.asked[0].weak is True and reply.asked[0].match_score == 0.9
    not_seen, _ = ask("When does she wave?", weak)
    assert not_seen.answer.startswith(
        'I did not see wave in 00:00.0–00:30.0, so I cannot give a time (closest class to "wave": '
        "wave, weak match 0.90)."
    )
    # Above the floor nothing maps: the phrase names no class and is declared.
    strict, _ = ask(
        "When does she give a thumbs up?", deps_for(match_min_score=0.95, match_strong_score=0.95)
    )
    assert strict.answer.startswith("The offline backend cannot recognise thumbs up;")
    with pytest.raises(ConfigError, match="match_min_score"):
        Context(match_min_score=0.8, match_strong_score=0.7)


def test_with_a_vlm_every_class_is_checkable(monkeypatch):
    monkeypatch.setattr("agent.video.sample_frames", lambda *a, **k: [0, 1])
    vlm = FakeVLM(text='{"present": true}', data={"present": True})
    reply, final = ask("Is she playing the piano?", deps_for(vlm=vlm))
    assert final["step"] >= 1 and reply.asked[0].checkable is True
    assert reply.found is True and {e.label for e in reply.evidence} == {"play_instrument"}
    assert "cannot recognise" not in reply.answer
    assert all(0.0 <= e.start_s <= e.end_s <= 30.0 for e in reply.evidence)
    absent = FakeVLM(text='{"present": false}', data={"present": False})
    no, _ = ask("Is she playing the piano?", deps_for(vlm=absent))
    assert no.answer.startswith("No, not seen: I did not see playing an instrument in 00:00.0")
    assert no.found is False and no.evidence == []
