"""Gesture rules: hand shapes and where the hands are, head and wrist oscillations, gaze,
arms crossed, shrugs and fidgeting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agent.perception.features import FrameFeatures, HandFeatures
from agent.perception.geometry import FINGERS
from agent.perception.rules.common import NAN, Scored, Track, ramp, windowed, within
from agent.perception.rules.deliberate import deliberate_hand, handheld_objects

_TOWARDS_DEG = {"up": (0.0, 0.0), "down": (180.0, 180.0), "side": (90.0, 90.0)}


# --- hands ------------------------------------------------------------------------------------


def hand_shape_score(hand: HandFeatures, p: dict[str, Any]) -> tuple[float, str]:
    """How well one hand matches a sign's shape (fuzzy AND = the weakest condition)."""
    ext, curl = p["extended_min"], p["curled_max"]
    parts: dict[str, float] = {}
    extended = list(p.get("extended", []))
    curled = list(p.get("curled", []))
    values = dict(hand.extension)
    point_digit = None
    if p.get("any_digit"):
        # Foreshortening can make mediapipe name the wrong digit; then only the count of
        # straight digits and where the straight one points are trusted.
        order = sorted(FINGERS, key=lambda f: -values[f])
        count = len(extended)
        for finger in order[:count]:
            parts[f"{finger} straight"] = ramp(values[finger], curl, ext)
        # The digit mediapipe mislabelled leaves a half-straight ghost reading on the fist:
        # the runner-up only has to be not straight, the rest curled.
        rest = order[count:]
        if rest:
            parts[f"{rest[0]} not straight"] = ramp(values[rest[0]], 1.0, ext)
        for finger in rest[1:]:
            parts[f"{finger} curled"] = ramp(values[finger], ext, curl)
        point_digit = order[0] if count else None
    else:
        for finger in extended:
            parts[f"{finger} straight"] = ramp(values[finger], curl, ext)
        for finger in curled:
            parts[f"{finger} curled"] = ramp(values[finger], ext, curl)
    for finger in p.get("not_straight", []):
        parts[f"{finger} not straight"] = ramp(values[finger], 1.0, ext)
    for finger in p.get("not_curled", []):
        parts[f"{finger} not curled"] = ramp(values[finger], 0.5 * curl, curl)
    for key, digit in (("thumb_direction", "thumb"), ("index_direction", "index")):
        if key in p:
            digit = point_digit or digit
            angle = hand.direction_deg[digit]
            towards = p[key]
            if towards == "outward":
                lo, hi = (
                    90.0 - p.get("max_elevation_deg", 50),
                    90.0 + p.get("max_elevation_deg", 50),
                )
            else:
                target = _TOWARDS_DEG[towards][0]
                lo, hi = target - p["max_angle_deg"], target + p["max_angle_deg"]
            parts[f"{digit} points {towards} ({angle:.0f} deg from up)"] = within(
                angle, lo, hi, p["angle_margin_deg"]
            )
    if "knuckle_line_deg" in p:
        lo, hi = p["knuckle_line_deg"]
        parts[f"knuckles at {hand.knuckle_line_deg:.0f} deg"] = within(
            hand.knuckle_line_deg, lo, hi, p["angle_margin_deg"]
        )
    if "min_spread_deg" in p:
        parts[f"fingers spread {hand.spread_deg:.0f} deg"] = ramp(
            hand.spread_deg, p["min_spread_deg"] - p["angle_margin_deg"], p["min_spread_deg"]
        )
    if "max_spread_deg" in p:
        parts[f"fingers together {hand.spread_deg:.0f} deg"] = ramp(
            hand.spread_deg, p["max_spread_deg"] + p["angle_margin_deg"], p["max_spread_deg"]
        )
    if "min_index_middle_deg" in p:
        need = p["min_index_middle_deg"]
        parts[f"index and middle apart {hand.index_middle_deg:.0f} deg"] = ramp(
            hand.index_middle_deg, need - p["angle_margin_deg"] / 3, need
        )
    if "max_index_middle_deg" in p:
        limit = p["max_index_middle_deg"]
        parts[f"index beside the middle finger ({hand.index_middle_deg:.0f} deg)"] = ramp(
            hand.index_middle_deg, limit + p["angle_margin_deg"], limit
        )
    if p.get("touching"):
        limit = p["max_touch_distance"]
        parts[f"thumb and index tips touch ({hand.thumb_index_gap:.2f} palm)"] = ramp(
            hand.thumb_index_gap, 2 * limit, limit
        )
    if not parts:
        return NAN, ""
    score = min(parts.values())
    shown = ", ".join(name for name, value in parts.items() if value >= 0.5)
    return score, shown


def _per_hand(
    track: Track, score_hand: Callable[[int, FrameFeatures, HandFeatures], tuple[float, str]]
) -> Scored:
    """Best hand per frame: score, box and cue text (`score_hand(frame index, frame, hand)`)."""
    out = Scored.empty(len(track.frames))
    for index, frame in enumerate(track.frames):
        best = (NAN, None, "")
        for hand in frame.hands:
            score, cue = score_hand(index, frame, hand)
            if not np.isnan(score) and (np.isnan(best[0]) or score > best[0]):
                best = (
                    score,
                    hand.box,
                    f"{hand.side} hand: {cue}" if hand.side != "unknown" else f"hand: {cue}",
                )
        out.scores[index], out.boxes[index], out.cues[index] = best
    return out


def hand_sign(track: Track, p: dict[str, Any]) -> Scored:
    """Static hand shapes a person would call deliberate: which digits are straight or
    curled and where they point, on a hand large enough to read, held still (in video), and
    not gripping or touching an object the detector saw."""
    held = handheld_objects(track, p)

    def score(index: int, frame: FrameFeatures, hand: HandFeatures) -> tuple[float, str]:
        shape, cue = hand_shape_score(hand, p)
        if np.isnan(shape):
            return shape, cue
        gate, why = deliberate_hand(track, index, hand, held[index], p)
        return min(shape, gate), f"{cue}; {why}" if why else cue

    out = _per_hand(track, score)
    if len(track.frames) > 1:
        out.scores = _held_over(out.scores, p["held_samples"])
    return out


def _held_over(scores: np.ndarray, samples: int) -> np.ndarray:
    """Each score capped by the best run of `samples` consecutive samples through it (the
    weakest in that run): a shape seen in one sample and gone in the next is a glimpse of a
    moving hand, not a sign held (NaN, not seen, holds nothing)."""
    n = len(scores)
    if samples <= 1 or n == 0:
        return scores
    filled = np.where(np.isnan(scores), 0.0, scores)
    best = np.zeros(n)
    for start in range(max(n - samples + 1, 1)):
        window = slice(start, start + samples)
        best[window] = np.maximum(best[window], filled[window].min())
    return np.where(np.isnan(scores), scores, np.minimum(scores, best))


def hand_near_face(track: Track, p: dict[str, Any]) -> Scored:
    """A hand at a face region (mouth, face, scalp), optionally in a given shape."""
    region = p["region"]
    key = {"mouth": "palm_mouth", "lips": "index_mouth", "face": "face_box", "scalp": "above_eyes"}[
        region
    ]
    limit = p["max_distance"]

    def score(_index: int, frame: FrameFeatures, hand: HandFeatures) -> tuple[float, str]:
        if not hand.to_face:
            return NAN, ""
        value = hand.to_face[key]
        # A hand much bigger than a real hand beside that face is nearer the camera: in front
        # of the face, not touching it.
        scale = hand.to_face["hand_scale"]
        if scale > p["max_hand_scale"]:
            return 0.0, f"hand in front of the face (palm {scale:.2f} face widths)"
        depth = hand.to_face.get("depth_in_front", NAN)
        if depth > p["max_depth_in_front"]:
            return 0.0, f"hand {depth:.1f} shoulder widths in front of the face"
        if region == "scalp":
            # Fingertips at or above the hairline and near the head (not a raised hand far
            # away, not a hand over the forehead).
            near = ramp(hand.to_face["forehead"], 2 * limit + 0.5, limit + 0.5)
            need = p["min_above_eyes"]
            result = min(ramp(value, need * 0.6, need), near)
            cue = f"fingertips {value:.2f} face widths above the eyes"
        else:
            result = ramp(value, 2 * limit, limit)
            cue = f"hand {value:.2f} face widths from the {region}"
        shape = p.get("require_shape")
        if shape:
            shape_score, shape_cue = hand_shape_score(hand, {**p, **shape})
            result = min(result, shape_score)
            cue += f"; {shape_cue}"
        return result, cue

    return _per_hand(track, score)


def hand_raise(track: Track, p: dict[str, Any]) -> Scored:
    """A wrist held above the shoulder line (torso lengths)."""
    out = Scored.empty(len(track.frames))
    need = p["min_height_over_shoulder"]
    for index, frame in enumerate(track.frames):
        heights = [frame.body.get(f"wrist_{s}_above_shoulder") for s in ("l", "r")]
        heights = [h for h in heights if h is not None]
        if not heights:
            continue
        top = max(heights)
        out.scores[index] = ramp(top, need / 2, need)
        out.boxes[index] = frame.person_box
        out.cues[index] = f"wrist {top:.2f} torso lengths above the shoulders"
    return out


# --- oscillations -----------------------------------------------------------------------------


def _reversals(values: np.ndarray, min_step: float) -> int:
    """Direction changes of a series, ignoring steps smaller than `min_step`."""
    values = values[~np.isnan(values)]
    steps = np.diff(values)
    steps = steps[np.abs(steps) >= min_step]
    return int(np.sum(np.sign(steps[1:]) != np.sign(steps[:-1]))) if len(steps) > 1 else 0


def _oscillation(
    track: Track, series: np.ndarray, p: dict[str, Any], unit: str, gate=None
) -> Scored:
    """Back-and-forth movement: amplitude over a window and at least `min_reversals` turns.

    At low sampling rates fast oscillations alias; the amplitude and the turns between
    samples still show them, which is what this measures.
    """
    out = Scored.empty(len(track.frames))
    need = p["min_amplitude"]
    for index, window in windowed(track, p["window_s"]):
        values = series[window]
        if np.sum(~np.isnan(values)) < 3 or (gate is not None and not gate[index]):
            if not np.isnan(series[index]):
                out.scores[index] = 0.0
            continue
        amplitude = float(np.nanmax(values) - np.nanmin(values))
        turns = _reversals(values, need / 2)
        score = ramp(amplitude, need / 2, need) if turns >= p["min_reversals"] else 0.0
        out.scores[index] = score
        out.boxes[index] = track.frames[index].face_box or track.frames[index].person_box
        out.cues[index] = f"{amplitude:.1f} {unit} swing with {turns} reversals"
    return out


def head_oscillation(track: Track, p: dict[str, Any]) -> Scored:
    """Nod (pitch) or head shake (yaw): repeated turns of the head about one axis."""
    axis = p["axis"]
    other = "yaw" if axis == "pitch" else "pitch"
    series = track.series("head", axis)
    scored = _oscillation(track, series, p, f"deg {axis}", gate=_facing_camera(track, p))
    cross = track.series("head", other)
    # The other axis must move clearly less, or it is general head movement.
    for index, window in windowed(track, p["window_s"]):
        a, b = series[window], cross[window]
        if np.sum(~np.isnan(a)) >= 3 and not np.isnan(scored.scores[index]):
            ratio = float(np.nanstd(b) / max(np.nanstd(a), 1e-6))
            scored.scores[index] *= ramp(
                ratio, p["max_cross_axis_ratio"] * 1.5, p["max_cross_axis_ratio"]
            )
    return scored


def _facing_camera(track: Track, p: dict[str, Any]) -> np.ndarray:
    """Per frame: a face large enough to read (`min_face_width` of the frame width) that
    looks at the camera over the window on median (`frontal_max_deg` of yaw and pitch): a
    nod or a shake is made to someone; a dancer's or a player's head turning is not one."""
    yaw, pitch = np.abs(track.series("head", "yaw")), np.abs(track.series("head", "pitch"))
    width = np.array([f.face_box[2] if f.face_box else np.nan for f in track.frames])
    limit = p["frontal_max_deg"]
    out = np.zeros(len(track.frames), dtype=bool)
    for index, window in windowed(track, p["window_s"]):
        if np.sum(~np.isnan(yaw[window])) < 3:
            continue
        frontal = np.nanmedian(yaw[window]) <= limit and np.nanmedian(pitch[window]) <= limit
        out[index] = frontal and np.nanmedian(width[window]) >= p["min_face_width"]
    return out


def wrist_oscillation(track: Track, p: dict[str, Any]) -> Scored:
    """Wave (raised wrist swinging sideways) or clapping (wrists meeting repeatedly)."""
    if p["mode"] == "two_hand_distance":
        series = track.series("body", "wrists_gap")
        scored = _oscillation(track, series, p, "shoulder widths between wrists")
        for index in range(len(series)):
            lo = (
                np.nanmin(series[max(0, index - 2) : index + 3])
                if not np.isnan(series[index])
                else NAN
            )
            if not np.isnan(scored.scores[index]) and not np.isnan(lo):
                scored.scores[index] *= ramp(lo, 2 * p["max_min_distance"], p["max_min_distance"])
        return scored
    best = Scored.empty(len(track.frames))
    for side in ("l", "r"):
        raised = (
            track.series("body", f"wrist_{side}_above_shoulder") >= p["min_height_over_shoulder"]
        )
        scored = _oscillation(
            track, track.series("body", f"wrist_{side}_x"), p, "torso lengths sideways", gate=raised
        )
        for index, score in enumerate(scored.scores):
            if not np.isnan(score) and (np.isnan(best.scores[index]) or score > best.scores[index]):
                best.scores[index], best.boxes[index], best.cues[index] = (
                    score,
                    scored.boxes[index],
                    scored.cues[index],
                )
    return best


# --- gaze and body ----------------------------------------------------------------------------


def gaze_aversion(track: Track, p: dict[str, Any]) -> Scored:
    """Head (and eyes) turned away from the camera beyond an angle, held."""
    out = Scored.empty(len(track.frames))
    limit = p["max_gaze_offset_deg"]
    looked = _looked_at_camera(track, p)
    for index, frame in enumerate(track.frames):
        if not frame.head:
            continue
        if not looked[index]:
            # Someone who never faces the camera (a drummer, a player) is not averting a gaze.
            out.scores[index] = 0.0
            continue
        # Iris offset of 1 (at the eye corner) is ~30 degrees of eye rotation.
        yaw = frame.head["yaw"] + 30.0 * frame.head["gaze_x"]
        pitch = frame.head["pitch"]
        offset = float(np.hypot(yaw, pitch - p["frontal_pitch_deg"]))
        out.scores[index] = ramp(offset, limit, limit + p["angle_margin_deg"])
        out.boxes[index] = frame.face_box
        out.cues[index] = (
            f"gaze {offset:.0f} deg off camera "
            f"(head yaw {frame.head['yaw']:.0f}, pitch {pitch:.0f})"
        )
    return out


def _looked_at_camera(track: Track, p: dict[str, Any]) -> np.ndarray:
    """Per frame: whether the face looked at the camera (gaze offset under
    `max_gaze_offset_deg`) within `reference_window_s` of it; always True for a still."""
    if len(track.frames) == 1:
        return np.ones(1, dtype=bool)
    frontal = np.zeros(len(track.frames), dtype=bool)
    for index, frame in enumerate(track.frames):
        if frame.head:
            yaw = frame.head["yaw"] + 30.0 * frame.head["gaze_x"]
            offset = float(np.hypot(yaw, frame.head["pitch"] - p["frontal_pitch_deg"]))
            frontal[index] = offset < p["max_gaze_offset_deg"]
    return np.array(
        [frontal[window].any() for _, window in windowed(track, 2 * p["reference_window_s"])]
    )


def arms_crossed(track: Track, p: dict[str, Any]) -> Scored:
    """Each wrist near the opposite elbow, at chest height."""
    out = Scored.empty(len(track.frames))
    limit = p["max_wrist_to_opposite_elbow"]
    for index, frame in enumerate(track.frames):
        value = frame.body.get("wrist_to_other_elbow")
        if value is None:
            continue
        height = frame.body.get("wrists_below_shoulders", NAN)
        chest = within(height, 0.1, 0.8, 0.2) if not np.isnan(height) else 0.0
        out.scores[index] = min(ramp(value, 2 * limit, limit), chest)
        out.boxes[index] = frame.person_box
        out.cues[index] = f"wrists {value:.2f} shoulder widths from the opposite elbows"
    return out


def shrug(track: Track, p: dict[str, Any]) -> Scored:
    """Shoulders briefly raised toward the ears, relative to the person's usual neck length."""
    out = Scored.empty(len(track.frames))
    neck = track.series("body", "neck")
    if np.sum(~np.isnan(neck)) < 2:
        return out
    usual = float(np.nanmedian(neck))
    for index, value in enumerate(neck):
        if np.isnan(value):
            continue
        rise = usual - value
        # Shoulders cannot rise much more than this: larger jumps are landmark glitches.
        plausible = rise <= p["max_rise"]
        out.scores[index] = ramp(rise, p["min_rise"] / 2, p["min_rise"]) if plausible else 0.0
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = f"shoulders raised {rise:.2f} shoulder widths"
    return out


def fidgeting(track: Track, p: dict[str, Any]) -> Scored:
    """Small, sustained hand movement while the body stays put."""
    out = Scored.empty(len(track.frames))
    wrists = [track.series("body", f"wrist_{s}_{a}") for s in ("l", "r") for a in ("x", "y")]
    hips = track.series("body", "hip_x")
    for index, window in windowed(track, p["window_s"]):
        moves = [
            np.nanmean(np.abs(np.diff(w[window])))
            for w in wrists
            if np.sum(~np.isnan(w[window])) >= 3
        ]
        if not moves:
            continue
        hand_motion = float(np.max(moves))
        h = hips[window]
        torso_motion = float(np.nanmax(h) - np.nanmin(h)) if np.sum(~np.isnan(h)) >= 2 else 0.0
        score = min(
            ramp(hand_motion, p["min_hand_motion"] / 2, p["min_hand_motion"]),
            ramp(hand_motion, 2 * p["max_hand_motion"], p["max_hand_motion"]),
            ramp(torso_motion, 2 * p["max_torso_motion"], p["max_torso_motion"]),
        )
        out.scores[index] = score
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = f"hands move {hand_motion:.2f} torso lengths per frame, body still"
    return out
