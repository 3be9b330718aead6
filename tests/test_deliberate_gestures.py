"""Hand signs a person would call deliberate: readable size, held still, no grip."""

import numpy as np

from agent.perception.features import FrameFeatures, HandFeatures
from agent.perception.learned.objects import SeenObject
from agent.perception.rules.common import Track, merged_params
from agent.perception.rules.gesture import hand_sign

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# Thresholds of the fist class: every finger curled.
FIST = merged_params("hand_sign", {"curled": list(FINGERS), "extended": []})


def _fist(wrist_x: float, palm: float = 0.2) -> HandFeatures:
    return HandFeatures(
        side="right",
        box=[wrist_x - 0.05, 0.4, 0.1, 0.15],
        extension=dict.fromkeys(FINGERS, 0.05),
        direction_deg=dict.fromkeys(FINGERS, 0.0),
        spread_deg=10.0,
        index_middle_deg=5.0,
        thumb_index_gap=0.5,
        knuckle_line_deg=90.0,
        wrist_xy=(wrist_x, 0.5),
        palm_size=palm,
    )


def _scores(hands, objects=None) -> np.ndarray:
    frames = [
        FrameFeatures(time_s=0.5 * i, hands=[hand], objects=objects if i == 0 else None)
        for i, hand in enumerate(hands)
    ]
    return hand_sign(Track(frames, [{}] * len(frames), 0.5), FIST).scores


def test_a_large_still_fist_is_a_sign():
    assert np.all(_scores([_fist(0.5), _fist(0.51), _fist(0.5)]) > 0.9)


def test_a_small_hand_is_too_few_pixels_to_read():
    assert np.all(_scores([_fist(0.5, palm=0.04)] * 3) == 0.0)


def test_a_hand_moving_through_the_shape_is_no_sign():
    # Half a frame height per sample: 2.5 palm lengths.
    assert np.all(_scores([_fist(0.2), _fist(0.7), _fist(1.2)]) == 0.0)


def test_a_hand_gripping_a_cup_is_no_sign():
    cup = SeenObject("cup", 0.6, (0.45, 0.42, 0.1, 0.2))
    scores = _scores([_fist(0.5)] * 4, objects=[cup])
    # The detector saw the cup at 0 s: the frames within 0.6 s are grips, those at 1 s and
    # 1.5 s are not (two samples: a sign is held in two at least).
    assert scores[0] == scores[1] == 0.0 and np.all(scores[2:] > 0.9)


def test_a_shape_in_one_sample_only_is_a_glimpse_not_a_sign():
    # The hand stays where it is but opens after one sample: a fist glimpsed in passing.
    opened = _fist(0.5)
    opened.extension = dict.fromkeys(FINGERS, 1.0)
    assert np.all(_scores([_fist(0.5), opened, opened]) == 0.0)
    assert np.all(_scores([_fist(0.5), _fist(0.5), opened])[:2] > 0.9)


def test_a_still_shows_its_sign_without_neighbours():
    assert _scores([_fist(0.5)])[0] > 0.9


def test_a_hand_held_swept_across_and_held_again_is_a_swipe_not_a_sign():
    # Held at 0.2 for 1 s, swept 0.6 (3 palm lengths) in one sample, held at 0.8: a swipe.
    wrists = [0.2, 0.2, 0.21, 0.8, 0.8, 0.81]
    assert np.all(_scores([_fist(x) for x in wrists]) == 0.0)


def test_a_sign_held_in_one_place_after_a_swipe_window_counts_again():
    # The same sweep, then the hand stays at 0.8: held more than swipe_window_s after the
    # last hold at 0.2, it is a sign again.
    wrists = [0.2, 0.2, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    scores = _scores([_fist(x) for x in wrists])
    assert np.all(scores[:6] == 0.0) and np.all(scores[6:] > 0.9)


def test_the_other_hand_held_elsewhere_is_no_swipe():
    left = [_fist(0.2) for _ in range(3)]
    for hand in left:
        hand.side = "left"
    frames = [
        FrameFeatures(time_s=0.5 * i, hands=[right, left[i]])
        for i, right in enumerate([_fist(0.8) for _ in range(3)])
    ]
    scores = hand_sign(Track(frames, [{}] * 3, 0.5), FIST).scores
    assert np.all(scores > 0.9)
