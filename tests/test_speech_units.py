"""The talk rule on constructed lip movements, and neutral-first expressions on constructed
classifier outputs (no media)."""

import numpy as np

from agent.perception.features import FrameFeatures
from agent.perception.rules.common import Scored, Track, merged_params
from agent.perception.rules.emotion import neutral_first
from agent.perception.rules.speech import lip_turns, mouth_movement


def lips(gaps, face_px=150, step_s=0.5) -> Track:
    """A face whose inner-lip gap (eye spans) follows `gaps`, `face_px` tall in a 480 px frame."""
    frames = [
        FrameFeatures(
            i * step_s,
            face_box=[0.4, 0.3, 0.2, face_px / 480],
            face_raw={"lip_gap": g},
            height_px=480,
        )
        for i, g in enumerate(gaps)
    ]
    return Track(frames, [{}] * len(frames), step_s=step_s)


def test_lip_turns_count_openings_and_closings_not_jitter():
    assert lip_turns(np.array([0.02, 0.15, 0.03, 0.14, 0.02]), 0.04) == 3
    assert lip_turns(np.array([0.02, 0.03, 0.02, 0.035, 0.02]), 0.04) == 0
    # A smile opens the mouth once and holds it: no turn.
    assert lip_turns(np.array([0.02, 0.02, 0.2, 0.21, 0.2]), 0.04) == 0
    assert lip_turns(np.array([0.02, np.nan, 0.15, 0.03]), 0.04) == 1


def test_mouth_movement_reads_a_talking_mouth_not_a_still_or_tiny_one():
    params = merged_params("mouth_movement", {})
    talking = mouth_movement(lips([0.02, 0.15, 0.04, 0.16, 0.03, 0.14, 0.05, 0.15]), params)
    assert np.nanmin(talking.scores[1:-1]) >= params["min_score"]
    assert "lips opened and closed" in talking.cues[3]
    held = mouth_movement(lips([0.02, 0.02, 0.2, 0.2, 0.21, 0.2, 0.2, 0.2]), params)
    assert np.nanmax(held.scores) < params["min_score"]
    tiny = mouth_movement(lips([0.02, 0.15, 0.04, 0.16, 0.03, 0.14], face_px=30), params)
    assert np.isnan(tiny.scores).all()


def expressions(happy, neutral):
    scored = {}
    for label, values, params in (
        ("happy", happy, {"au_weights": {"AU12": 1.0}, "speech_margin": 0.2}),
        ("neutral", neutral, {"mode": "absence"}),
    ):
        values = np.array(values, dtype=float)
        params = {**merged_params("expression_model", params), "min_score": 0.4}
        scored[label] = (params, Scored(values, [None] * len(values), [""] * len(values)))
    return scored


def test_an_expression_must_be_clear_of_neutral_and_more_so_while_talking():
    margin = merged_params("expression_model", {})["neutral_margin"]
    clear, short = 0.1 + margin + 0.05, 0.1 + margin - 0.05  # over a neutral score of 0.1
    talking_clear = 0.1 + margin + 0.2 + 0.05  # margin + speech margin
    members = expressions([clear, short, clear, clear, talking_clear], [0.1] * 5)
    aus = [{"AU12": 0.2}, {"AU12": 0.2}, {"AU12": 0.2}, {"AU12": 0.9}, {"AU12": 0.2}]
    talking = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    neutral_first(members, aus, talking)
    happy = members["happy"][1].scores
    assert happy[0] == clear and happy[1] == 0.0
    # Talking: clear of neutral is not enough without a lip-corner pull ...
    assert happy[2] == 0.0
    # ... it is with one (a talking mouth does not pull the corners up), or by the speech margin.
    assert happy[3] == clear and happy[4] == talking_clear
