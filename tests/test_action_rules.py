"""Action rules on constructed features: objects at body parts, joined hands, exercise poses,
the upright gates of posture and gait, and detector person boxes in the people tracker."""

import numpy as np
import pytest

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception.features import FrameFeatures, HandFeatures, body_geometry
from agent.perception.learned.objects import SeenObject
from agent.perception.rules import (
    Track,
    exercise_posture,
    gait,
    joined_hands,
    merged_params,
    object_interaction,
    posture_scores,
)
from tests.pose_support import make_pose

MOUTH = (0.5, 0.4)
FACE_WIDTH = 0.2


def kb_params(class_id: str) -> dict:
    """The parameters the knowledge base gives a class, over the detector's defaults."""
    item = load_knowledge_base(Context()).get(class_id)
    return merged_params(item.perception.detector, item.perception.params)


def frame(time_s: float, objects=None, parts=None, face_width=FACE_WIDTH, **extra):
    return FrameFeatures(
        time_s,
        person_box=[0.3, 0.1, 0.4, 0.8],
        parts={"mouth": MOUTH, "hand_0": (0.6, 0.7)} if parts is None else parts,
        face_width=face_width,
        objects=objects,
        **extra,
    )


def track(frames: list[FrameFeatures], step_s: float = 0.5) -> Track:
    return Track(frames, [{}] * len(frames), step_s)


def box_at(centre: tuple[float, float], side: float = 0.1) -> tuple[float, ...]:
    return (centre[0] - side / 2, centre[1] - side / 2, side, side)


# --- object_interaction -----------------------------------------------------------------------


def test_cup_at_the_mouth_scores_high_and_far_away_zero():
    drink = kb_params("drink")
    cup = SeenObject("cup", 0.9, box_at(MOUTH))
    far = SeenObject("cup", 0.9, box_at((0.9, 0.9)))
    scored = object_interaction(track([frame(0.0, [cup]), frame(0.5, [far])]), drink)
    assert scored.scores[0] == pytest.approx(1.0)
    assert scored.boxes[0] == list(cup.box) and "cup" in scored.cues[0]
    assert "mouth" in scored.cues[0]
    assert scored.scores[1] == 0.0


def test_distance_and_detector_score_grade_the_interaction():
    drink = kb_params("drink")  # max_distance 0.5 face widths; scores 0.25 .. 0.6 map to 0 .. 1
    # The box edge 0.75 face widths (0.15) right of the mouth: halfway down the ramp.
    beside = SeenObject("bottle", 0.9, (MOUTH[0] + 0.15, 0.35, 0.1, 0.1))
    unsure = SeenObject("cup", 0.425, box_at(MOUTH))
    scored = object_interaction(track([frame(0.0, [beside]), frame(0.5, [unsure])]), drink)
    assert scored.scores.tolist() == pytest.approx([0.5, 0.5])


def test_other_objects_score_zero_not_unknown():
    drink = kb_params("drink")
    book = SeenObject("book", 0.95, box_at(MOUTH))
    scored = object_interaction(track([frame(0.0, [book]), frame(0.5, [])]), drink)
    assert scored.scores.tolist() == [0.0, 0.0]
    assert scored.cues[0] == "none of bottle, cup, wine_glass near the mouth"


def test_detections_hold_for_hold_s_then_frames_are_unobserved():
    drink = kb_params("drink")
    assert drink["hold_s"] == 1.5
    cup = SeenObject("cup", 0.9, box_at(MOUTH))
    # The detector ran at 0.5 s only (object_fps is lower than the sampling rate).
    frames = [frame(t * 0.5, [cup] if t == 1 else None) for t in range(7)]
    scores = object_interaction(track(frames), drink).scores
    assert np.isnan(scores[0])  # before any run
    assert scores[1:5].tolist() == [1.0, 1.0, 1.0, 1.0]  # 0.5 .. 2.0 s: within 1.5 s
    assert np.isnan(scores[5:]).all()  # 2.5 s and later: too old
    # No face to measure distances with: not observable either.
    assert np.isnan(object_interaction(track([frame(0.0, [cup], face_width=None)]), drink).scores)


def test_swing_needs_fast_hands():
    swing = kb_params("swing")  # bat at the hands, hands faster than 3 face widths / s
    assert swing["min_hand_speed"] == 3.0

    def swinging(step_per_frame: float) -> np.ndarray:
        frames = []
        for i in range(8):
            hand = (0.2 + step_per_frame * i, 0.5)
            bat = SeenObject("baseball_bat", 0.8, box_at(hand, 0.15))
            frames.append(frame(i * 0.25, [bat], parts={"hand_0": hand}, face_width=0.1))
        return object_interaction(track(frames, 0.25), swing).scores

    held_still = swinging(0.0)
    fast = swinging(0.08)  # 0.08 / 0.1 face widths per 0.25 s = 3.2 face widths / s
    assert np.nanmax(held_still) == 0.0
    assert np.nanmin(fast) > 0.9


def test_body_parts_from_the_pose_where_the_face_is_hidden():
    """A cup in front of the mouth hides the face mesh: mouth and face width come from the
    pose, in isotropic frame-height units (x scaled by the aspect)."""
    from agent.perception.features import body_parts
    from agent.perception.landmarks import Person

    pose = make_pose()
    pose[7, :2], pose[8, :2] = (0.46, 0.1), (0.54, 0.1)  # ears
    pose[9, :2], pose[10, :2] = (0.48, 0.14), (0.52, 0.14)  # mouth corners
    parts, face_width = body_parts(Person(pose=pose), aspect=2.0)
    assert parts["mouth"] == pytest.approx((1.0, 0.14))
    assert face_width == pytest.approx(0.16)
    assert parts["lap"] == pytest.approx((1.0, 0.55))
    assert parts["hand_l"] == pytest.approx((0.84, 0.5)) and parts["hand_r"] == pytest.approx(
        (1.16, 0.5)
    )
    pose[9:11, 3] = 0.0  # mouth corners not visible: no mouth to measure against
    assert "mouth" not in body_parts(Person(pose=pose), aspect=2.0)[0]


# --- joined_hands -----------------------------------------------------------------------------


def hand(side: str, centre: tuple[float, float], palm: float = 0.1) -> HandFeatures:
    return HandFeatures(
        side=side,
        box=list(box_at(centre, palm)),
        extension={},
        direction_deg={},
        spread_deg=0.0,
        index_middle_deg=0.0,
        thumb_index_gap=1.0,
        knuckle_line_deg=90.0,
        wrist_xy=centre,
        palm_size=palm,
    )


def test_joined_hands_needs_a_hand_that_is_not_the_persons_own():
    params = kb_params("arm_wrestle")
    grips = [
        [hand("right", (0.5, 0.5)), hand("unknown", (0.55, 0.52))],  # another person's hand
        [hand("left", (0.5, 0.5)), hand("right", (0.55, 0.52))],  # clasping one's own hands
        [hand("right", (0.2, 0.5)), hand("unknown", (0.8, 0.5))],  # far apart
        [hand("unknown", (0.5, 0.5))],  # one hand
    ]
    frames = [FrameFeatures(i * 0.5, hands=h) for i, h in enumerate(grips)]
    scores = joined_hands(track(frames), params).scores
    assert scores[0] == 1.0
    assert scores[1:].tolist() == [0.0, 0.0, 0.0]


# --- exercise_posture -------------------------------------------------------------------------


def leg_raised_pose(shift_x: float = 0.0) -> np.ndarray:
    """Standing on the right leg, the left leg raised sideways and straight (~125 deg)."""
    pose = make_pose()
    pose[25, :2], pose[27, :2] = (0.33, 0.45), (0.19, 0.35)
    pose[:, 0] += shift_x
    return pose


def body_track(poses: list[np.ndarray], step_s: float = 0.25) -> Track:
    frames = [
        FrameFeatures(i * step_s, body=body_geometry(p, 1.0), person_box=[0.3, 0.1, 0.4, 0.8])
        for i, p in enumerate(poses)
    ]
    return track(frames, step_s)


def test_a_held_straight_leg_raise_is_exercise():
    body = body_geometry(leg_raised_pose(), 1.0)
    assert body["leg_raise_l_deg"] > 110 and body["knee_l_deg"] > 175
    scored = exercise_posture(body_track([leg_raised_pose()] * 20), kb_params("exercise"))
    assert np.nanmin(scored.scores[2:]) > 0.9
    assert "a leg raised straight" in scored.cues[10]


def test_standing_at_rest_is_not_exercise():
    scored = exercise_posture(body_track([make_pose()] * 20), kb_params("exercise"))
    assert np.nanmax(scored.scores) < 0.05


def test_travelling_hips_gate_exercise_off():
    # 0.1 per 0.25 s with a 0.3 torso: 1.3 torso lengths / s, walking pace, not a held pose.
    poses = [leg_raised_pose(shift_x=0.1 * i - 0.5) for i in range(12)]
    scored = exercise_posture(body_track(poses), kb_params("exercise"))
    assert np.nanmax(scored.scores) == 0.0


# --- posture and gait gates -------------------------------------------------------------------


def bent_over_pose() -> np.ndarray:
    """Torso level (bending forward), legs standing straight under the hips."""
    pose = make_pose()
    spots = {0: (0.15, 0.5), 11: (0.3, 0.47), 12: (0.3, 0.53), 23: (0.6, 0.47), 24: (0.6, 0.53),
             25: (0.6, 0.7), 26: (0.62, 0.7), 27: (0.6, 0.9), 28: (0.62, 0.9)}  # fmt: skip
    for index, xy in spots.items():
        pose[index, :2] = xy
    return pose


def test_lying_needs_the_legs_flat_too():
    params = merged_params("posture", {"posture": "lying"})
    bent = body_geometry(bent_over_pose(), 1.0)
    assert bent["torso_tilt_deg"] > 80  # the torso alone would read as lying
    assert posture_scores(FrameFeatures(0.0, body=bent), params)["lying"] < 0.05
    lying = body_geometry(make_pose(lying=True), 1.0)
    assert posture_scores(FrameFeatures(0.0, body=lying), params)["lying"] > 0.9


def test_thighs_need_the_ankles_in_view():
    pose = make_pose(sitting=True)
    assert "thigh_deg" in body_geometry(pose, 1.0)
    pose[27:29, 3] = 0.0  # ankles hidden (under a table): mediapipe's knees are guesses
    body = body_geometry(pose, 1.0)
    assert "thigh_deg" not in body
    assert "sitting" not in posture_scores(
        FrameFeatures(0.0, body=body), merged_params("posture", {})
    )


@pytest.mark.parametrize(("tilt_deg", "walking"), [(5.0, True), (80.0, False)])
def test_gait_needs_an_upright_torso(tilt_deg, walking):
    steps = [
        {"ankle_gap": 0.1 + 0.4 * (i % 2), "hip_x": 0.1 * i, "torso_len": 0.3,
         "torso_tilt_deg": tilt_deg}
        for i in range(12)
    ]  # fmt: skip
    frames = [FrameFeatures(i * 0.25, body=b) for i, b in enumerate(steps)]
    scores = gait(track(frames, 0.25), merged_params("gait", {})).scores
    assert bool(np.nanmax(scores) > 0.9) is walking, scores


# --- people tracker on detector boxes ---------------------------------------------------------


def test_people_tracker_keeps_upright_detector_boxes_only():
    from agent.perception.people import PeopleTracker

    frame_rgb = np.zeros((480, 640, 3), np.uint8)
    tracker = PeopleTracker()
    for step in range(10):
        walker = [0.1 + 0.03 * step, 0.3, 0.05, 0.2]
        seated = [0.5, 0.4, 0.4, 0.3]  # wider than tall: a seated close-up, not a walker
        close_up = [0.0, 0.02, 0.3, 0.95]  # fills the frame height
        found = tracker.update(frame_rgb, step * 0.5, [walker, seated, close_up])
        assert [box for _, box in found] == [walker]
    assert len({t.person_id for t in tracker.tracks}) == 1
    assert len(tracker.tracks[0].times_s) == 10
