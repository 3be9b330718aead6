"""Per-frame features from landmarks: hand shape, hand-face relations, body geometry, parts.

Everything here is a measurement (angles in degrees, distances in units of a body part's own
size) and pure numpy, so it is unit-tested on constructed landmark sets. What counts as a sign,
an emotion or a posture is decided by the rules in `agent/perception/rules/`, from knowledge-base
parameters. Face measurements (action units, head pose) are in `agent.perception.face`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agent.perception.face import face_geometry, head_pose
from agent.perception.geometry import (
    FACE,
    FINGER_CHAINS,
    FINGERS,
    MIDDLE_MCP,
    POSE,
    VISIBLE,
    WRIST,
    angle_deg,
    direction_from_up,
    distance,
    isotropic,
)
from agent.perception.landmarks import FrameLandmarks, Hand, Person, points_box

# Share of the face box a hand must cover before the face counts as occluded.
OCCLUDED = 0.15


@dataclass
class HandFeatures:
    """Shape and place of one hand in one frame."""

    side: str
    box: list[float]
    # 0 (curled) .. 1 (straight) per finger.
    extension: dict[str, float]
    # Pointing angle of each finger from image-up, degrees in [0, 180] (0 = up, 180 = down).
    direction_deg: dict[str, float]
    # Angle between index and pinky (fan of the hand) and between index and middle.
    spread_deg: float
    index_middle_deg: float
    # Thumb tip to index tip, in palm lengths (wrist to middle-finger base).
    thumb_index_gap: float
    # Direction of the knuckle row (index base to pinky base) from image-up: ~90 when the palm
    # or the back of the hand faces the camera upright, ~0 or ~180 when the hand is sideways
    # (a thumbs-up seen from the front has its knuckles stacked, pinky lowest: ~180).
    knuckle_line_deg: float
    wrist_xy: tuple[float, float]
    palm_size: float
    # Distances from the hand to face regions in face widths (absent without a face).
    to_face: dict[str, float] = field(default_factory=dict)


@dataclass
class FrameFeatures:
    """The small per-frame summary a PerceptionSession keeps (no landmarks, no pixels)."""

    time_s: float
    person_box: list[float] | None = None
    face_box: list[float] | None = None
    hands: list[HandFeatures] = field(default_factory=list)
    # Raw (not yet baseline-normalised) action-unit geometry, see `face_geometry`.
    face_raw: dict[str, float] = field(default_factory=dict)
    head: dict[str, float] = field(default_factory=dict)
    body: dict[str, float] = field(default_factory=dict)
    motion_energy: float | None = None
    # Where body parts are, in isotropic frame-height units (see `body_parts`), and the size
    # of the face there: what object-interaction rules measure distances against.
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)
    face_width: float | None = None
    aspect: float = 1.0
    # The frame's height in pixels: how large a face is in pixels, not only in frame shares.
    height_px: int = 0
    # Learned facial-expression probabilities {emotion id: p} (empty without a visible,
    # unoccluded face or without the expression models).
    expression: dict[str, float] = field(default_factory=dict)
    # Objects the learned detector saw in this frame, or None where it did not run.
    objects: list | None = None


# --- hands ----------------------------------------------------------------------------------


def finger_bend_deg(points: np.ndarray, finger: str) -> float:
    """Total bend along a finger's joints (0 = straight; a closed fist bends ~200-270)."""
    chain = (WRIST, *FINGER_CHAINS[finger]) if finger != "thumb" else FINGER_CHAINS[finger]
    total = 0.0
    for a, b, c in zip(chain, chain[1:], chain[2:], strict=False):
        total += angle_deg(points[b] - points[a], points[c] - points[b])
    return total


def finger_extension(points: np.ndarray, finger: str) -> float:
    """0 (curled) .. 1 (straight) from joint bend and from how far the tip reaches.

    Both are needed: a finger pointing at the camera looks short but is straight, and a
    curled finger seen side-on can look straight in 2-D but its tip stays near the palm.
    """
    palm = max(distance(points, WRIST, MIDDLE_MCP), 1e-6)
    if finger == "thumb":
        # The thumb folds across the palm in a fist: its tip then sits near the index base.
        straight = 1.0 - np.clip((finger_bend_deg(points, "thumb") - 20.0) / 70.0, 0.0, 1.0)
        gap = min(distance(points, 4, other) for other in (5, 6, 7, 8, 9))
        reach = np.clip((gap / palm - 0.3) / 0.5, 0.0, 1.0)
        return float(0.5 * straight + 0.5 * reach)
    base, _, _, tip = FINGER_CHAINS[finger]
    straight = 1.0 - np.clip((finger_bend_deg(points, finger) - 40.0) / 120.0, 0.0, 1.0)
    # Tip beyond the finger base, away from the wrist: ~0.9 palm lengths when straight.
    reach = np.clip(
        (distance(points, WRIST, tip) - distance(points, WRIST, base)) / palm / 0.8, 0.0, 1.0
    )
    return float(0.5 * straight + 0.5 * reach)


def hand_features(hand: Hand, aspect: float) -> HandFeatures:
    """Finger extension, pointing directions, spread and thumb-index gap of one hand."""
    points = isotropic(hand.points, aspect)
    palm = max(distance(points, WRIST, MIDDLE_MCP), 1e-6)
    extension = {finger: finger_extension(points, finger) for finger in FINGERS}
    direction = {}
    for finger, chain in FINGER_CHAINS.items():
        base = chain[1] if finger == "thumb" else chain[0]
        direction[finger] = direction_from_up(points[chain[-1]] - points[base])
    vectors = {f: points[c[-1], :2] - points[c[0], :2] for f, c in FINGER_CHAINS.items()}
    return HandFeatures(
        side=hand.side,
        box=hand.box,
        extension={k: round(v, 3) for k, v in extension.items()},
        direction_deg={k: round(v, 1) for k, v in direction.items()},
        spread_deg=round(angle_deg(vectors["index"], vectors["pinky"]), 1),
        index_middle_deg=round(angle_deg(vectors["index"], vectors["middle"]), 1),
        thumb_index_gap=round(distance(points, 4, 8) / palm, 3),
        knuckle_line_deg=round(direction_from_up(points[17] - points[5]), 1),
        wrist_xy=(float(points[WRIST, 0]), float(points[WRIST, 1])),
        palm_size=palm,
    )


def hand_face_relations(hand: Hand, face: np.ndarray, aspect: float) -> dict[str, float]:
    """Nearest fingertip/palm distance to mouth, face, top of head, in face widths."""
    hp = isotropic(hand.points, aspect)[:, :2]
    fp = isotropic(face, aspect)[:, :2]
    face_width = max(float(np.linalg.norm(fp[FACE["cheek_l"]] - fp[FACE["cheek_r"]])), 1e-6)
    tips = hp[[4, 8, 12, 16, 20]]
    mouth = (fp[FACE["lip_top_inner"]] + fp[FACE["lip_bottom_inner"]]) / 2
    forehead = fp[FACE["forehead"]]
    centre = fp.mean(axis=0)
    lo, hi = fp.min(axis=0), fp.max(axis=0)
    # Signed distance of the nearest fingertip to the face box (negative = inside).
    inside = np.maximum(lo - tips, tips - hi).max(axis=1)
    palm_centre = hp[[0, 5, 9, 13, 17]].mean(axis=0)
    return {
        "face_box": round(float(inside.min()) / face_width, 3),
        "mouth": round(float(np.linalg.norm(tips - mouth, axis=1).min()) / face_width, 3),
        "palm_mouth": round(float(np.linalg.norm(palm_centre - mouth)) / face_width, 3),
        "index_mouth": round(float(np.linalg.norm(hp[8] - mouth)) / face_width, 3),
        "forehead": round(float(np.linalg.norm(tips - forehead, axis=1).min()) / face_width, 3),
        # Fingertips above the eyes (positive = above, in face widths): head scratching.
        "above_eyes": round(
            float(fp[[FACE["eye_outer_l"], FACE["eye_outer_r"]], 1].mean() - tips[:, 1].min())
            / face_width,
            3,
        ),
        "centre": round(float(np.linalg.norm(palm_centre - centre)) / face_width, 3),
        # Palm length in face widths: ~0.5-0.7 for a hand at the face's distance.
        "hand_scale": round(float(np.linalg.norm(hp[0] - hp[9])) / face_width, 3),
    }


def wrist_depth_in_front(hand: Hand, pose: np.ndarray, aspect: float) -> float:
    """How far the hand's wrist is in front of the nose, toward the camera (shoulder widths).

    From the pose's depth estimate; NaN when that wrist is not visible. A hand stretched
    toward the camera overlaps the face in 2-D without touching it.
    """
    wrists = [POSE["wrist_l"], POSE["wrist_r"]]
    nearest = min(wrists, key=lambda i: float(np.linalg.norm(pose[i, :2] - hand.points[0, :2])))
    shoulders = abs(pose[POSE["shoulder_l"], 0] - pose[POSE["shoulder_r"], 0]) * aspect
    if pose[nearest, 3] < VISIBLE or shoulders < 1e-6:
        return float("nan")
    return round(float(pose[POSE["nose"], 2] - pose[nearest, 2]) * aspect / shoulders, 3)


# --- body -----------------------------------------------------------------------------------


def body_geometry(pose: np.ndarray, aspect: float) -> dict[str, float]:
    """Torso and thigh angles, wrist/shoulder placement, in torso lengths; {} when not visible."""
    p = isotropic(pose, aspect)[:, :2]
    vis = pose[:, 3]

    def seen(*names: str) -> bool:
        return all(vis[POSE[n]] > VISIBLE for n in names)

    out: dict[str, float] = {}
    if not seen("shoulder_l", "shoulder_r"):
        return out
    shoulders = (p[POSE["shoulder_l"]] + p[POSE["shoulder_r"]]) / 2
    shoulder_w = max(float(np.linalg.norm(p[POSE["shoulder_l"]] - p[POSE["shoulder_r"]])), 1e-6)
    out["shoulder_width"] = shoulder_w
    unit = shoulder_w
    if seen("hip_l", "hip_r"):
        hips = (p[POSE["hip_l"]] + p[POSE["hip_r"]]) / 2
        torso = shoulders - hips
        unit = max(float(np.linalg.norm(torso)), 1e-6)
        out["torso_len"] = unit
        out["torso_tilt_deg"] = round(direction_from_up(torso), 1)
        out["hip_y"] = float(hips[1])
        out["hip_x"] = float(hips[0])
        thighs = []
        for side in ("l", "r"):
            # The ankle too: mediapipe guesses knees hidden under a table with confidence,
            # and a guessed knee reads as standing up or sitting down.
            if seen(f"hip_{side}", f"knee_{side}", f"ankle_{side}"):
                thigh = p[POSE[f"knee_{side}"]] - p[POSE[f"hip_{side}"]]
                # 0 = thigh hanging straight down, 90 = horizontal (sitting).
                thighs.append(180.0 - direction_from_up(thigh))
        if thighs:
            out["thigh_deg"] = round(float(np.mean(thighs)), 1)
        if seen("ankle_l", "ankle_r"):
            out["ankle_gap"] = float(np.linalg.norm(p[POSE["ankle_l"]] - p[POSE["ankle_r"]])) / unit
            out["ankle_l_x"] = float(p[POSE["ankle_l"], 0]) / unit
            out["ankle_r_x"] = float(p[POSE["ankle_r"], 0]) / unit
    out.update(limb_angles(p, seen, shoulders, unit))
    nose_y = p[POSE["nose"], 1]
    # Shoulders' height under the nose, in shoulder widths (smaller = shoulders raised).
    out["neck"] = round(float(shoulders[1] - nose_y) / shoulder_w, 3)
    out["shoulders_y"] = float(shoulders[1])
    for side in ("l", "r"):
        if seen(f"wrist_{side}"):
            wrist = p[POSE[f"wrist_{side}"]]
            out[f"wrist_{side}_x"] = float(wrist[0]) / unit
            out[f"wrist_{side}_y"] = float(wrist[1]) / unit
            # Height of the wrist above the shoulder line (torso lengths) and above the nose.
            out[f"wrist_{side}_above_shoulder"] = round(float(shoulders[1] - wrist[1]) / unit, 3)
            out[f"wrist_{side}_above_nose"] = round(float(nose_y - wrist[1]) / unit, 3)
    if seen("wrist_l", "wrist_r", "elbow_l", "elbow_r"):
        # Arms crossed: each wrist near the opposite elbow, both wrists at chest height.
        cross = (
            np.linalg.norm(p[POSE["wrist_l"]] - p[POSE["elbow_r"]])
            + np.linalg.norm(p[POSE["wrist_r"]] - p[POSE["elbow_l"]])
        ) / 2
        out["wrist_to_other_elbow"] = round(float(cross) / shoulder_w, 3)
        out["wrists_gap"] = round(
            float(np.linalg.norm(p[POSE["wrist_l"]] - p[POSE["wrist_r"]])) / shoulder_w, 3
        )
        out["wrists_below_shoulders"] = round(
            float((p[POSE["wrist_l"], 1] + p[POSE["wrist_r"], 1]) / 2 - shoulders[1]) / unit, 3
        )
    return out


# --- frame ----------------------------------------------------------------------------------


def frame_features(
    frame: FrameLandmarks, person: Person | None = None, min_person_height: float = 0.0
) -> FrameFeatures:
    """The per-frame summary of one person (the first one by default).

    A person (with a body in view) shorter than `min_person_height` of the frame gets only a
    box: landmarks of a figure that small are guesses, and rules would read noise.
    """
    out = FrameFeatures(time_s=frame.time_s, aspect=frame.aspect, height_px=frame.height)
    person = person or (frame.persons[0] if frame.persons else None)
    if person is None:
        return out
    aspect = frame.aspect
    out.person_box = person.box
    if person.pose is not None and out.person_box and out.person_box[3] < min_person_height:
        # Hands the palm detector found on its own (side "unknown") are not landmarks of the
        # small figure: in a large still, holistic also sees a tiny "body" in the hand itself.
        person = Person(person.person_id, hands=[h for h in person.hands if h.side == "unknown"])
        if not person.hands:
            return out
    if person.face is not None:
        out.face_box = points_box(person.face)
        out.face_raw = face_geometry(person.face, aspect)
        out.head = head_pose(person.face, aspect)
    for hand in person.hands:
        features = hand_features(hand, aspect)
        if person.face is not None:
            features.to_face = hand_face_relations(hand, person.face, aspect)
            if person.pose is not None:
                features.to_face["depth_in_front"] = wrist_depth_in_front(hand, person.pose, aspect)
        out.hands.append(features)
    if out.face_box and any(overlap(h.box, out.face_box) > OCCLUDED for h in out.hands):
        # A hand over the face drags the mesh: expression and head pose are not measurable.
        out.face_raw, out.head = {}, {}
    if person.pose is not None:
        out.body = body_geometry(person.pose, aspect)
    out.parts, out.face_width = body_parts(person, aspect)
    return out


def limb_angles(p: np.ndarray, seen, shoulders: np.ndarray, unit: float) -> dict[str, float]:
    """How far limbs are from rest, in degrees: arms and legs raised (0 = hanging straight
    down, 180 = straight up), elbows and knees (180 = straight), and how far the hips are above
    the shoulders (torso lengths; positive only when bent over or upside down)."""
    out: dict[str, float] = {}
    for side in ("l", "r"):
        shoulder, elbow, wrist = (POSE[f"{j}_{side}"] for j in ("shoulder", "elbow", "wrist"))
        if seen(f"shoulder_{side}", f"elbow_{side}", f"wrist_{side}"):
            arm, upper, fore = p[wrist] - p[shoulder], p[shoulder] - p[elbow], p[wrist] - p[elbow]
            out[f"arm_raise_{side}_deg"] = round(180.0 - direction_from_up(arm), 1)
            out[f"elbow_{side}_deg"] = round(angle_deg(upper, fore), 1)
        hip, knee, ankle = (POSE[f"{j}_{side}"] for j in ("hip", "knee", "ankle"))
        if seen(f"hip_{side}", f"knee_{side}", f"ankle_{side}"):
            out[f"leg_raise_{side}_deg"] = round(180.0 - direction_from_up(p[ankle] - p[hip]), 1)
            out[f"knee_{side}_deg"] = round(angle_deg(p[hip] - p[knee], p[ankle] - p[knee]), 1)
    if seen("hip_l", "hip_r"):
        hips_y = (p[POSE["hip_l"], 1] + p[POSE["hip_r"], 1]) / 2
        out["hips_above_shoulders"] = round(float(shoulders[1] - hips_y) / unit, 3)
    return out


Parts = dict[str, tuple[float, float]]


def body_parts(person: Person, aspect: float) -> tuple[Parts, float | None]:
    """Mouth, eyes, hands and lap positions (isotropic frame-height units) and face width.

    The face mesh gives the mouth and eyes where the face is seen; the pose stands in where
    it is not (a cup in front of the mouth hides the mesh). Hands are hand-landmark centres,
    else the pose's wrists.
    """
    parts: dict[str, tuple[float, float]] = {}
    face_width = None
    if person.face is not None:
        face = isotropic(person.face, aspect)[:, :2]
        parts["mouth"] = _point((face[FACE["lip_top_inner"]] + face[FACE["lip_bottom_inner"]]) / 2)
        eyes = [FACE[k] for k in ("eye_outer_l", "eye_inner_l", "eye_outer_r", "eye_inner_r")]
        parts["eyes"] = _point(face[eyes].mean(axis=0))
        face_width = float(np.linalg.norm(face[FACE["cheek_l"]] - face[FACE["cheek_r"]]))
    pose = isotropic(person.pose, aspect)[:, :2] if person.pose is not None else None
    seen = person.pose[:, 3] > VISIBLE if person.pose is not None else None
    if pose is not None:
        if "mouth" not in parts and seen[POSE["mouth_l"]] and seen[POSE["mouth_r"]]:
            parts["mouth"] = _point((pose[POSE["mouth_l"]] + pose[POSE["mouth_r"]]) / 2)
        if face_width is None and seen[POSE["ear_l"]] and seen[POSE["ear_r"]]:
            face_width = float(np.linalg.norm(pose[POSE["ear_l"]] - pose[POSE["ear_r"]]))
        if seen[POSE["hip_l"]] and seen[POSE["hip_r"]]:
            parts["lap"] = _point((pose[POSE["hip_l"]] + pose[POSE["hip_r"]]) / 2)
    for index, hand in enumerate(person.hands):
        parts[f"hand_{index}"] = _point(isotropic(hand.points, aspect)[:, :2].mean(axis=0))
    if not person.hands and pose is not None:
        for side in ("l", "r"):
            if seen[POSE[f"wrist_{side}"]]:
                parts[f"hand_{side}"] = _point(pose[POSE[f"wrist_{side}"]])
    return parts, face_width


def _point(xy: np.ndarray) -> tuple[float, float]:
    return (round(float(xy[0]), 4), round(float(xy[1]), 4))


def overlap(box: list[float], face_box: list[float]) -> float:
    """Fraction of `face_box` covered by `box` (both normalised [x, y, w, h])."""
    x0, y0 = max(box[0], face_box[0]), max(box[1], face_box[1])
    x1 = min(box[0] + box[2], face_box[0] + face_box[2])
    y1 = min(box[1] + box[3], face_box[1] + face_box[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / max(face_box[2] * face_box[3], 1e-9)


def motion_energy(previous_gray: np.ndarray | None, gray: np.ndarray) -> float | None:
    """Mean absolute change between two small grey frames, 0..1 (None for the first frame)."""
    if previous_gray is None or previous_gray.shape != gray.shape:
        return None
    return round(float(np.abs(gray.astype(np.int16) - previous_gray).mean()) / 255.0, 4)
