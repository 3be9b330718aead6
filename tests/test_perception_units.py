"""Perception features, rules and smoothing on constructed landmark sets (no mediapipe)."""

import numpy as np
import pytest

from agent.perception.face import au_intensities, neutral_baseline
from agent.perception.features import FrameFeatures, finger_extension, hand_features
from agent.perception.geometry import direction_from_up
from agent.perception.landmarks import Hand
from agent.perception.rules import Track, hand_shape_score, head_oscillation, merged_params
from agent.perception.smoothing import exclusive, hysteresis, segments
from tests.pose_support import make_pose


def make_hand(straight: set[str], point_up: bool = True) -> np.ndarray:
    """21 hand points: palm upright; straight fingers go up, curled ones fold back down."""
    points = np.zeros((21, 3))
    points[0] = (0.5, 0.8, 0)
    bases = {"index": 0.44, "middle": 0.48, "ring": 0.52, "pinky": 0.56}
    ids = {"index": 5, "middle": 9, "ring": 13, "pinky": 17}
    for finger, x in bases.items():
        i = ids[finger]
        points[i] = (x, 0.6, 0)
        if finger in straight:
            points[i + 1 : i + 4] = [(x, 0.55, 0), (x, 0.5, 0), (x, 0.45, 0)]
        else:
            points[i + 1 : i + 4] = [(x, 0.56, -0.03), (x, 0.6, -0.04), (x, 0.64, -0.02)]
    points[1] = (0.45, 0.75, 0)
    points[2] = (0.41, 0.7, 0)
    if "thumb" in straight:
        points[3], points[4] = (0.37, 0.65, 0), (0.33, 0.6, 0)
    else:
        points[3], points[4] = (0.43, 0.66, -0.02), (0.47, 0.64, -0.03)
    if not point_up:
        points[:, 1] = 1.6 - points[:, 1]
    return points


def test_finger_extension_separates_straight_and_curled():
    points = make_hand({"index"})
    assert finger_extension(points, "index") > 0.8
    assert finger_extension(points, "middle") < 0.3
    assert finger_extension(points, "thumb") < 0.4
    assert finger_extension(make_hand({"thumb"}), "thumb") > 0.7


def test_direction_from_up():
    assert direction_from_up(np.array([0.0, -1.0])) == pytest.approx(0.0)
    assert direction_from_up(np.array([1.0, 0.0])) == pytest.approx(90.0)
    assert direction_from_up(np.array([0.0, 1.0])) == pytest.approx(180.0)


@pytest.mark.parametrize(
    ("straight", "params", "matches"),
    [
        (
            {"index"},
            {"extended": ["index"], "curled": ["middle", "ring", "pinky"], "index_direction": "up"},
            True,
        ),
        (
            {"index", "middle"},
            {"extended": ["index"], "curled": ["middle", "ring", "pinky"]},
            False,
        ),
        ({"index", "middle"}, {"extended": ["index", "middle"], "curled": ["ring", "pinky"]}, True),
        (set(), {"extended": [], "curled": ["thumb", "index", "middle", "ring", "pinky"]}, True),
        (
            {"index"},
            {"extended": ["index"], "curled": ["middle"], "index_direction": "down"},
            False,
        ),
    ],
)
def test_hand_shape_score(straight, params, matches):
    features = hand_features(Hand(make_hand(straight), "right"), aspect=1.0)
    score, cue = hand_shape_score(features, merged_params("hand_sign", params))
    assert (score >= 0.5) is matches, (score, cue, features.extension)


def test_au_intensities_smile_against_baseline():
    neutral = {
        "brow_inner": 0.25,
        "brow_outer": 0.17,
        "brow_gap": 0.3,
        "eye_open": 0.34,
        "mouth_width": 0.55,
        "corner_lift": 0.0,
        "corner_asym": 0.0,
        "lip_gap": 0.0,
        "lip_thickness": 0.2,
        "nose_lip": 0.18,
        "jaw": 0.93,
        "chin_lip": 0.44,
    }
    smile = {**neutral, "mouth_width": 0.75, "corner_lift": 0.07, "eye_open": 0.27}
    baseline = neutral_baseline([neutral, neutral, smile])
    assert au_intensities(neutral, baseline)["AU12"] == pytest.approx(0.0)
    smiling = au_intensities(smile, baseline)
    assert smiling["AU12"] > 0.8 and smiling["AU6"] > 0.5
    # A still of a smile: its own expression must not become its baseline.
    assert au_intensities(smile, neutral_baseline([smile]))["AU12"] > 0.5


def test_hysteresis_and_segments():
    scores = np.array([0.1, 0.6, 0.45, 0.45, 0.2, 0.7, np.nan, 0.9])
    assert hysteresis(scores, 0.5, 0.4).tolist() == [
        False,
        True,
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    times = np.arange(len(scores)) * 0.5
    found = segments(
        times, scores, on=0.5, off=0.4, min_duration_s=0.0, merge_gap_s=0.6, step_s=0.5
    )
    assert [(s, e) for _, _, s, e in found] == [(0.5, 4.0)]  # gaps of 0.5 s merge
    apart = segments(
        times, scores, on=0.5, off=0.4, min_duration_s=0.0, merge_gap_s=0.4, step_s=0.5
    )
    assert [(s, e) for _, _, s, e in apart] == [(0.5, 2.0), (2.5, 3.0), (3.5, 4.0)]
    long_only = segments(
        times, scores, on=0.5, off=0.4, min_duration_s=1.0, merge_gap_s=0.0, step_s=0.5
    )
    assert [(s, e) for _, _, s, e in long_only] == [(0.5, 2.0)]


def test_a_run_through_footage_shorter_than_the_hold_is_kept():
    times, held = np.array([0.0, 0.5]), np.array([0.9, 0.8])
    options = {"on": 0.5, "off": 0.4, "min_duration_s": 2.0, "merge_gap_s": 0.0, "step_s": 0.5}
    assert segments(times, held, **options) == []  # a span of a video: the hold stands
    assert segments(times, held, whole_footage=True, **options) == [(0, 1, 0.0, 1.0)]
    # Not through every sample, or a single sample: the hold stands.
    assert segments(times, np.array([0.9, 0.1]), whole_footage=True, **options) == []
    assert segments(times[:1], held[:1], whole_footage=True, **options) == []
    # Footage longer than the hold needs no exemption; a short run in it is still dropped.
    long_s = np.arange(8) * 0.5
    short = np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert segments(long_s, short, whole_footage=True, **options) == []


def test_exclusive_keeps_best_label_per_frame():
    out = exclusive({"a": np.array([0.9, 0.2, np.nan]), "b": np.array([0.6, 0.7, 0.5])})
    assert out["a"].tolist()[:2] == [0.9, 0.0] and out["b"].tolist() == [0.0, 0.7, 0.5]


def test_head_oscillation_detects_nod_not_turn():
    def track(pitch, yaw, face_width=0.2):
        frames = [
            FrameFeatures(
                time_s=i * 0.25,
                face_box=[0.4, 0.2, face_width, face_width],
                head={"pitch": p, "yaw": y, "roll": 0.0, "gaze_x": 0.0},
            )
            for i, (p, y) in enumerate(zip(pitch, yaw, strict=True))
        ]
        return Track(frames, [{}] * len(frames), 0.25)

    nod = [0, 12, 0, 12, 0, 12, 0, 12, 0, 12]
    params = merged_params("head_oscillation", {"axis": "pitch"})
    assert np.nanmax(head_oscillation(track(nod, [0] * 10), params).scores) > 0.9
    turn = list(range(0, 50, 5))  # one slow turn: no reversals
    assert np.nanmax(head_oscillation(track(turn, [0] * 10), params).scores) == 0.0
    # The same bobbing of a head turned away (a dancer in profile) or of a face too small to
    # read is no nod: a nod is made to someone.
    assert np.nanmax(head_oscillation(track(nod, [60] * 10), params).scores) == 0.0
    assert np.nanmax(head_oscillation(track(nod, [0] * 10, 0.03), params).scores) == 0.0


@pytest.mark.parametrize(
    ("kind", "sitting", "lying"),
    [("standing", False, False), ("sitting", True, False), ("lying", False, True)],
)
def test_posture_scores(kind, sitting, lying):
    from agent.perception.features import body_geometry
    from agent.perception.rules import posture_scores

    body = body_geometry(make_pose(sitting=sitting, lying=lying), aspect=1.0)
    scores = posture_scores(
        FrameFeatures(0.0, body=body), merged_params("posture", {"posture": kind})
    )
    assert max(("standing", "sitting", "lying"), key=lambda k: scores.get(k, 0.0)) == kind, (
        body,
        scores,
    )
    assert scores[kind] > 0.8


def test_sit_down_transition():
    from agent.perception.features import body_geometry
    from agent.perception.rules import posture_transition

    frames = [
        FrameFeatures(t * 0.5, body=body_geometry(make_pose(sitting=t >= 4), 1.0)) for t in range(8)
    ]
    track = Track(frames, [{}] * len(frames), 0.5)
    params = merged_params(
        "posture_transition", {"from_posture": "standing", "to_posture": "sitting"}
    )
    scores = posture_transition(track, params).scores
    assert np.nanmax(scores[:4]) < 0.5 and np.nanmax(scores[4:]) > 0.8
    reverse = merged_params(
        "posture_transition", {"from_posture": "sitting", "to_posture": "standing"}
    )
    assert np.nanmax(posture_transition(track, reverse).scores) < 0.5


def test_people_tracker_follows_a_walker():
    from agent.perception.people import PeopleTracker

    rng = np.random.default_rng(0)
    background = rng.integers(90, 110, (240, 320, 3), dtype=np.uint8)
    tracker = PeopleTracker()
    for step in range(30):
        frame = background.copy()
        x = 20 + step * 8  # walks right, 8 px per frame; body 16x48 px
        frame[100:148, x : x + 16] = 20
        tracker.update(frame, step * 0.5)
    walkers = [t for t in tracker.tracks if len(t.times_s) >= 10]
    assert len(walkers) == 1, [(t.person_id, len(t.times_s)) for t in tracker.tracks]
    assert walkers[0].displacement(tracker.aspect) > 3.0


def _features(extension: dict, direction: dict, knuckles: float):
    from agent.perception.features import HandFeatures

    return HandFeatures(
        side="right",
        box=[0.4, 0.4, 0.2, 0.2],
        extension=extension,
        direction_deg=direction,
        spread_deg=30.0,
        index_middle_deg=10.0,
        thumb_index_gap=1.0,
        knuckle_line_deg=knuckles,
        wrist_xy=(0.5, 0.6),
        palm_size=0.1,
    )


def test_thumb_seen_end_on_counts_by_geometry_not_by_name():
    """A thumbs-up facing the camera that mediapipe reads as 'index up' is still a thumbs-up
    when its knuckles are stacked vertically; an upright index with a level knuckle row is not."""
    thumbs_up = merged_params(
        "hand_sign",
        {
            "extended": ["thumb"],
            "curled": ["index", "middle", "ring", "pinky"],
            "thumb_direction": "up",
            "any_digit": True,
            "knuckle_line_deg": [135, 180],
        },
    )
    index_up = merged_params(
        "hand_sign",
        {
            "extended": ["index"],
            "curled": ["middle", "ring", "pinky"],
            "index_direction": "up",
            "max_angle_deg": 30,
            "knuckle_line_deg": [45, 135],
        },
    )
    misnamed = _features(
        {"thumb": 0.6, "index": 1.0, "middle": 0.05, "ring": 0.0, "pinky": 0.0},
        {"thumb": 40, "index": 15, "middle": 125, "ring": 140, "pinky": 150},
        knuckles=155.0,
    )
    assert hand_shape_score(misnamed, thumbs_up)[0] > 0.9
    assert hand_shape_score(misnamed, index_up)[0] < 0.2
    upright_index = _features(
        {"thumb": 0.1, "index": 1.0, "middle": 0.0, "ring": 0.0, "pinky": 0.0},
        {"thumb": 50, "index": 5, "middle": 145, "ring": 140, "pinky": 125},
        knuckles=115.0,
    )
    assert hand_shape_score(upright_index, index_up)[0] > 0.9
    assert hand_shape_score(upright_index, thumbs_up)[0] < 0.2


def _body_track(bodies: list[dict], step_s: float = 0.25) -> Track:
    frames = [
        FrameFeatures(i * step_s, body=b, person_box=[0.3, 0.1, 0.4, 0.8])
        for i, b in enumerate(bodies)
    ]
    return Track(frames, [{}] * len(frames), step_s)


def test_wave_needs_a_raised_swinging_wrist():
    from agent.perception.rules import hand_raise, wrist_oscillation

    swing = [{"wrist_r_x": 0.2 + 0.4 * (i % 2), "wrist_r_above_shoulder": 0.4} for i in range(12)]
    still = [{"wrist_r_x": 0.2, "wrist_r_above_shoulder": 0.4} for _ in range(12)]
    low = [{"wrist_r_x": 0.2 + 0.4 * (i % 2), "wrist_r_above_shoulder": -0.6} for i in range(12)]
    wave = merged_params("wrist_oscillation", {"mode": "raised_wrist", "min_amplitude": 0.25})
    assert np.nanmax(wrist_oscillation(_body_track(swing), wave).scores) > 0.9
    assert np.nanmax(wrist_oscillation(_body_track(still), wave).scores) == 0.0
    assert np.nanmax(wrist_oscillation(_body_track(low), wave).scores) == 0.0
    raised = merged_params("hand_raise", {})
    assert np.nanmin(hand_raise(_body_track(still), raised).scores) > 0.9
    assert np.nanmax(hand_raise(_body_track(low), raised).scores) == 0.0


def test_gait_needs_swinging_ankles_and_travel():
    from agent.perception.rules import gait

    walking = [
        {"ankle_gap": 0.1 + 0.4 * (i % 2), "hip_x": 0.1 * i, "torso_len": 0.3} for i in range(12)
    ]
    marching = [
        {"ankle_gap": 0.1 + 0.4 * (i % 2), "hip_x": 0.5, "torso_len": 0.3} for i in range(12)
    ]
    params = merged_params("gait", {})
    assert np.nanmax(gait(_body_track(walking), params).scores) > 0.9
    assert np.nanmax(gait(_body_track(marching), params).scores) < 0.1


def test_gaze_aversion_from_head_and_iris():
    from agent.perception.rules import gaze_aversion

    def frame(yaw, gaze_x):
        return FrameFeatures(
            0.0,
            face_box=[0.4, 0.2, 0.2, 0.3],
            head={"yaw": yaw, "pitch": 0.0, "roll": 0.0, "gaze_x": gaze_x},
        )

    params = merged_params("gaze_aversion", {})
    scores = gaze_aversion(
        Track([frame(2, 0.0), frame(35, 0.0), frame(10, 0.8)], [{}] * 3, 0.5), params
    ).scores
    assert scores[0] == 0.0 and scores[1] == 1.0 and scores[2] == 1.0
