"""Rule-based question understanding: types, targets, time constraints, subject, refinement."""

import pytest

from agent.planning import (
    POINT_WINDOW_HALF_S,
    Plan,
    parse_duration,
    parse_time_window,
    plan_question,
    refine_plan,
)
from tests.agent_doubles import FakeKB


@pytest.fixture(scope="module")
def kb() -> FakeKB:
    return FakeKB()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When does she give a thumbs up?", "when"),
        ("At what time does he wave?", "when"),
        ("How many people are walking?", "how_many"),
        ("How often does she smile?", "how_many"),
        ("What is she doing?", "what"),
        ("Which emotion does he show?", "what"),
        ("Describe the video.", "describe"),
        ("What happens between 1:00 and 2:00?", "describe"),
        ("Does she smile more than she waves?", "compare"),
        ("Is he happy or sad?", "compare"),
        ("Does she give a thumbs up?", "yes_no"),
        ("Is anyone walking?", "yes_no"),
    ],
)
def test_question_types(kb, question, expected):
    assert plan_question(question, kb).question_type == expected


@pytest.mark.parametrize(
    ("question", "targets"),
    [
        ("When does she give a thumbs up?", ["thumbs_up"]),
        ("When does he start smiling?", ["happy"]),
        ("How many people are walking?", ["walk"]),
        ("Is he happy or sad?", ["happy", "sad"]),
        ("What is she doing?", []),
    ],
)
def test_targets_come_from_the_knowledge_base(kb, question, targets):
    assert plan_question(question, kb).targets == targets


def test_kind_words_restrict_open_questions(kb):
    assert plan_question("What emotion does he show?", kb).kinds == ["emotion"]
    assert plan_question("What is she doing?", kb).kinds == ["action"]
    assert plan_question("Which gestures does she make?", kb).kinds == ["gesture"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2:30", 150.0),
        ("1:02:03", 3723.0),
        ("10 seconds", 10.0),
        ("1.5 min", 90.0),
        ("an hour", 3600.0),
        ("45s", 45.0),
        ("two minutes", 120.0),
        ("soon", None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_time_constraints(kb):
    at = plan_question("What is she doing at 2:30?", kb)
    assert (at.at_s, at.start_s, at.end_s) == (
        150.0,
        150.0 - POINT_WINDOW_HALF_S,
        150.0 + POINT_WINDOW_HALF_S,
    )
    between = plan_question("Does he wave between 1:00 and 2:00?", kb)
    assert (between.start_s, between.end_s, between.targets) == (60.0, 120.0, ["wave"])
    first = plan_question("Does she smile in the first minute?", kb)
    assert (first.start_s, first.end_s) == (0.0, 60.0)
    last = plan_question("What emotion does he show in the last 30 seconds?", kb, 100.0)
    assert (last.start_s, last.end_s) == (70.0, 100.0)
    half = plan_question("Is anyone walking in the second half?", kb, 80.0)
    assert (half.start_s, half.end_s) == (40.0, 80.0)
    after = plan_question("Does she wave after 0:30?", kb)
    assert (after.start_s, after.end_s) == (30.0, None)
    assert parse_time_window("When does she wave?") == (None, None, None, "When does she wave?")


def test_relative_span_without_duration_stays_open(kb):
    plan = plan_question("What happens in the last minute?", kb, duration_s=None)
    assert (plan.start_s, plan.end_s) == (None, None)


def test_anchor_after_another_behavior(kb):
    plan = plan_question("What does she do after she sits down?", kb)
    assert plan.anchor is not None
    assert (plan.anchor.relation, plan.anchor.target) == ("after", "sit_down")
    # The anchor's own class is not what the question asks about.
    assert "sit_down" not in plan.targets
    before = plan_question("Does he wave before he sits down?", kb)
    assert before.anchor.relation == "before" and before.targets == ["wave"]


def test_occurrence_and_onset(kb):
    assert plan_question("When is the last time she smiles?", kb).occurrence == "last"
    onset = plan_question("When does he start smiling?", kb)
    assert onset.onset and onset.occurrence == "first"
    assert plan_question("When does she wave for the first time?", kb).occurrence == "first"
    assert plan_question("When does she wave?", kb).occurrence == "all"


def test_subject_on_the_left(kb):
    plan = plan_question("What is the man on the left doing?", kb)
    assert plan.subject is not None and plan.subject.side == "left"
    assert plan.subject.text == "the man on the left"
    assert plan_question("Is the woman on the right smiling?", kb).subject.side == "right"
    assert plan_question("When does she smile?", kb).subject is None


def test_people_counting(kb):
    assert plan_question("How many people are walking?", kb).count_people
    assert not plan_question("How many times does she wave?", kb).count_people


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("and after that?", "after_that"),
        ("What happened next?", "after_that"),
        ("And before that?", "before_that"),
        ("How long did it last?", "duration"),
        ("how long was that?", "duration"),
    ],
)
def test_follow_ups(kb, question, follow_up):
    assert plan_question(question, kb).follow_up == follow_up


def test_how_long_is_a_duration_question(kb):
    plan = plan_question("How long does she smile?", kb)
    assert plan.wants_duration and plan.targets == ["happy"] and plan.follow_up is None


def test_refine_plan_accepts_valid_json_and_keeps_the_asked_targets(kb):
    rule = plan_question("When does she give a thumbs up?", kb)
    refined, note = refine_plan(
        rule, {"targets": ["thumbs_up", "made_up"], "occurrence": "last"}, set(kb.ids())
    )
    assert refined.source == "vlm" and refined.occurrence == "last"
    assert refined.targets == ["thumbs_up"] and "refined" in note


@pytest.mark.parametrize(
    ("question", "data", "ignored"),
    [
        ("Is she happy?", {"targets": ["sad"]}, "targets"),
        ("Is she happy?", {"start_s": 40.0, "end_s": 55.0}, "start_s, end_s"),
        ("Does she wave between 0:05 and 0:10?", {"start_s": 40.0, "end_s": 55.0}, "start_s"),
        ("Does she wave at 0:20?", {"at_s": 45.0}, "at_s"),
        ("When does she wave?", {"question_type": "yes_no", "occurrence": "last"}, "question"),
    ],
)
def test_refine_plan_never_changes_what_was_asked_or_where(kb, question, data, ignored):
    # The model may add detail (occurrence, onset, a search text); the targets, window and
    # question type are the question's own: a reply that turns happy into sad, or names a
    # window the question did not, is not followed.
    rule = plan_question(question, kb)
    refined, note = refine_plan(rule, {**data, "query": "a better search text"}, set(kb.ids()))
    asked = ("question_type", "targets", "start_s", "end_s", "at_s", "anchor", "subject")
    assert [getattr(refined, f) for f in asked] == [getattr(rule, f) for f in asked]
    assert refined.query == "a better search text" and refined.source == "vlm"
    assert ignored in note and "ignored" in note


@pytest.mark.parametrize(
    "data",
    [None, "not a dict", {"question_type": "why"}, {"start_s": -5}, {"unknown_field": 1}],
)
def test_refine_plan_falls_back_to_rules_on_bad_output(kb, data):
    rule = plan_question("When does she give a thumbs up?", kb)
    refined, note = refine_plan(rule, data, set(kb.ids()))
    assert refined == rule and "rule-based plan stands" in note


def test_plan_round_trips_as_plain_data(kb):
    plan = plan_question("What does she do after she sits down at 0:05?", kb)
    assert Plan.model_validate(plan.model_dump()) == plan


@pytest.fixture(scope="module")
def real_kb():
    from agent.knowledge import load_knowledge_base

    return load_knowledge_base()


@pytest.mark.parametrize(
    ("question", "kind", "targets"),
    [
        ("When does she give a thumbs up?", "when", ["thumbs_up"]),  # not thumbs_down
        ("When does he start smiling?", "when", ["happy"]),
        ("How many people are walking?", "how_many", ["walk"]),
        ("When is he scratching his head?", "when", ["head_scratch"]),
        ("Does he look nervous?", "yes_no", ["anxiety"]),
        ("Is he happy or sad?", "compare", ["happy", "sad"]),
        ("What is she doing?", "what", []),
    ],
)
def test_plans_with_the_real_knowledge_base(real_kb, question, kind, targets):
    plan = plan_question(question, real_kb, duration_s=60.0)
    assert (plan.question_type, plan.targets) == (kind, targets)


def test_anchor_resolves_with_the_real_knowledge_base(real_kb):
    plan = plan_question("What does she do after she sits down?", real_kb)
    assert plan.anchor.target == "sit_down" and plan.kinds == ["action"]
