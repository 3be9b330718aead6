"""One time grammar (agent.time_phrases) for questions and model replies: a table of phrases a
user writes, read the same way by the planner and by the reply reader."""

import pytest

from agent.planning import POINT_WINDOW_HALF_S, parse_time_window
from agent.time_phrases import find_time_phrases, parse_number, parse_time_value
from agent.vlm.reply_times import find_time_spans, mentions_time

HALF = POINT_WINDOW_HALF_S
DURATION_S = 300.0


# (question, (start_s, end_s, at_s)) on a 300 s video.
@pytest.mark.parametrize(
    ("question", "window"),
    [
        ("Does he wave in the first 10 s?", (0.0, 10.0, None)),
        ("What happens between 1 and 2 minutes?", (60.0, 120.0, None)),
        ("What does she do from 1:05 to 1:30?", (65.0, 90.0, None)),
        ("Does she smile after two minutes?", (120.0, None, None)),
        ("What is she doing at 00:42?", (42.0 - HALF, 42.0 + HALF, 42.0)),
        ("Is anyone walking in the last thirty seconds?", (270.0, 300.0, None)),
        ("What happens around the 3-minute mark?", (180.0 - HALF, 180.0 + HALF, 180.0)),
        ("Does he wave between 1:00 and 2:00?", (60.0, 120.0, None)),
        ("Does she smile in the first minute?", (0.0, 60.0, None)),
        ("What emotion does he show in the last 30 seconds?", (270.0, 300.0, None)),
        ("Is anyone walking in the second half?", (150.0, 300.0, None)),
        ("Does she wave in the first half?", (0.0, 150.0, None)),
        ("Does she wave after 0:30?", (30.0, None, None)),
        ("Does she sit down before 1 min 30 s?", (0.0, 90.0, None)),
        ("Does she nod between 10 and 20?", (10.0, 20.0, None)),
        ("Does she nod between 10 and 20 seconds?", (10.0, 20.0, None)),
        ("How does he feel 3 to 5 minutes in?", (180.0, 300.0, None)),
        ("Who waves in the first half minute?", (0.0, 30.0, None)),
        ("Does she clap at twenty-five seconds?", (25.0 - HALF, 25.0 + HALF, 25.0)),
        ("Any smile within the first five minutes?", (0.0, 300.0, None)),
        ("What does he do in the final 2 min?", (180.0, 300.0, None)),
        ("Does she wave at 5?", (5.0 - HALF, 5.0 + HALF, 5.0)),
        ("When does she wave?", (None, None, None)),
        ("Do 2 to 3 people wave?", (None, None, None)),
        ("Does she wave at 5 people?", (None, None, None)),
    ],
)
def test_the_planner_reads_the_time_phrases_users_write(question, window):
    start_s, end_s, at_s, rest = parse_time_window(question, DURATION_S)
    assert (start_s, end_s, at_s) == window
    if window != (None, None, None):
        assert rest != question  # the phrase is cut out of the search text


# The same phrases written by a model: spans and moments that carry a unit or a clock.
@pytest.mark.parametrize(
    ("reply", "spans"),
    [
        ("She waves between 1 and 2 minutes.", [(60.0, 120.0)]),
        ("She waves from 1:05 to 1:30.", [(65.0, 90.0)]),
        ("A smile at 00:42.", [(42.0, 42.0)]),
        ("Clapping around the 3-minute mark.", [(180.0, 180.0)]),
        ("Nodding 20 - 22 seconds, a bow 1:05–1:09.", [(20.0, 22.0), (65.0, 69.0)]),
        ("A wave at twenty-five seconds.", [(25.0, 25.0)]),
        ("The 3 - 4 chairs are empty; 2 to 3 people sit.", []),
    ],
)
def test_replies_are_read_by_the_same_grammar(reply, spans):
    assert find_time_spans(reply) == spans
    assert mentions_time(reply) == bool(spans)


def test_the_planner_and_the_reply_reader_agree_on_every_span():
    # "between 1 and 2 minutes" was 1.0–120 s in the planner and 60–120 s in the replies.
    for text in ("between 1 and 2 minutes", "from 1:05 to 1:30", "between 10 and 20 seconds"):
        start_s, end_s, _, _ = parse_time_window(f"Does she wave {text}?")
        assert find_time_spans(f"She waves {text}.") == [(start_s, end_s)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("thirty", 30.0),
        ("twenty-five", 25.0),
        ("twenty five", 25.0),
        ("an", 1.0),
        ("half a", 0.5),
        ("12.5", 12.5),
        ("seventy", None),
    ],
)
def test_number_words(text, value):
    assert parse_number(text) == value


def test_time_values_in_words_and_units():
    assert parse_time_value("two minutes") == 120.0
    assert parse_time_value("3-minute") == 180.0
    assert parse_time_value("an hour") == 3600.0
    assert parse_time_value("1m30s") == 90.0
    assert parse_time_value("5", bare_unit_s=60.0) == 300.0


def test_overlapping_phrases_are_read_once():
    phrases = find_time_phrases("What happens between 1:00 and 2:00 at the end?")
    assert [(p.kind, p.start_s, p.end_s) for p in phrases] == [("span", 60.0, 120.0)]
