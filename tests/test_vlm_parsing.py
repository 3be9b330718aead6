"""Parsing of realistic VLM replies (fixtures in tests/fixtures/vlm_replies.yaml)."""

import logging
from pathlib import Path

import pytest
import yaml

from agent.vlm import parsing, reply_times

CASES = yaml.safe_load((Path(__file__).parent / "fixtures" / "vlm_replies.yaml").read_text())


def _parse(case: dict) -> dict | None:
    task, text = case["task"], case["text"]
    if task == "answer":
        return parsing.parse_answer(text)
    if task == "classify":
        return parsing.parse_classify(text, case["labels"])
    if task == "locate":
        return parsing.parse_locate(text)
    if task == "narrate":
        return parsing.parse_narrative(text)
    return parsing.parse_describe(text)


def _contains(actual, expected) -> bool:
    """Every key/value of `expected` is in `actual` (recursively; floats compared closely)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, float):
        return isinstance(actual, int | float) and abs(actual - expected) < 1e-6
    return actual == expected


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reply_fixture(case):
    data = _parse(case)
    if case["expect"] is None:
        assert data is None, f"should be unparsed, got {data}"
    else:
        assert data is not None, "should parse"
        assert _contains(data, case["expect"]), data
        assert not set(case.get("absent", [])) & set(data), data


def test_there_are_many_fixtures_of_each_task():
    tasks = [c["task"] for c in CASES]
    assert {t: tasks.count(t) >= 4 for t in ("answer", "classify", "locate", "describe")} == {
        "answer": True,
        "classify": True,
        "locate": True,
        "describe": True,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (12.5, 12.5),
        ("12.5", 12.5),
        ("12.5s", 12.5),
        ("12.5 sec", 12.5),
        ("4 seconds", 4.0),
        ("00:12", 12.0),
        ("1:02:03", 3723.0),
        ("00:12.5", 12.5),
        ("1 min 30 s", 90.0),
        ("1m30s", 90.0),
        ("2 minutes", 120.0),
        ("soon", None),
        (-3, None),
        (True, None),
        (None, None),
    ],
)
def test_parse_time_value(text, seconds):
    assert reply_times.parse_time_value(text) == seconds


def test_time_spans_in_prose_in_text_order():
    text = (
        "First a wave at 00:03, then clapping from 12.5s to 14s, nodding 20 - 22 seconds, "
        "and 1:05–1:09 a bow. The 3 - 4 chairs are empty."
    )
    assert reply_times.find_time_spans(text) == [
        (3.0, 3.0),
        (12.5, 14.0),
        (20.0, 22.0),
        (65.0, 69.0),
    ]


def test_match_label_never_guesses_between_labels():
    labels = ["happy", "very happy", "sad"]
    assert parsing.match_label("they look very happy", labels) == "very happy"
    assert parsing.match_label("happy and sad", labels) is None
    assert parsing.match_label("unhappy", labels) is None


def test_unparsed_replies_are_counted_and_logged(caplog):
    before = parsing.unparsed_counts().get("classify", 0)
    with caplog.at_level(logging.WARNING, logger="agent.vlm.parsing"):
        parsing.record_unparsed("classify", "maybe sad, maybe happy " * 40)
    assert parsing.unparsed_counts()["classify"] == before + 1
    assert "unparsed classify reply" in caplog.text
    assert len(caplog.records[-1].getMessage()) < 420  # long replies are truncated in the log


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("At 99 s she waves.", ""),
        ("No, nobody waves; at 0:05 she only scratches her head.", "No, nobody waves."),
        (
            "She waves twice. Then, from 3 to 5 seconds, she nods! Two people.",
            "She waves twice. Two people.",
        ),
        ("Time 3.5s: a wave. In the 5th second a nod. t = 4 smile.", ""),
        ("The man (00:12) smiles. He holds it for 2 minutes.", ""),
        ("She waves 3 times; 2 people watch.", "She waves 3 times; 2 people watch."),
    ],
)
def test_model_text_keeps_only_what_states_no_time(text, kept):
    assert reply_times.without_times(text) == kept
    assert not reply_times.mentions_time(kept)


def test_presence_comes_from_explicit_words_never_from_times():
    wave = ["wave", "waving", "waves"]
    negated = parsing.parse_answer("No, nobody waves; at 0:05 she only scratches her head.")
    assert not parsing.says_present(negated, wave)
    timed = parsing.parse_answer("She waves from 0:31 to 0:40.")  # prose: no yes, no label
    assert not parsing.says_present(timed, wave)
    assert parsing.says_present(parsing.parse_answer("Yes, she waves at 99 s."), wave)
    labelled = parsing.parse_answer(
        '{"answer": "See the moments.", "moments": [{"start_s": 1, "end_s": 2, "label": "Waving"}]}'
    )
    assert parsing.says_present(labelled, wave)
    assert not parsing.says_present(labelled, ["thumbs up"])
    other = parsing.parse_answer(
        '{"answer": "See.", "moments": [{"start_s": 1, "end_s": 2, "label": "not waving"}]}'
    )
    assert not parsing.says_present(other, wave)
    assert parsing.says_present({"present": True, "answer": "No idea"}, wave)
    assert not parsing.says_present({"present": False, "answer": "Yes"}, wave)
    assert parsing.yes_or_no("Nope.") is False and parsing.yes_or_no("Maybe") is None
