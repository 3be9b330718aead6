"""Detectors named by the knowledge base's `perception.detector`: features → per-frame scores.

Every threshold comes from the class's `perception.params` (the knowledge base), on top of
`defaults.yaml` beside this module; none is a constant here. A detector returns, for each
sampled frame, a score in 0..1 (NaN where the body part is not visible), the box it is about
and a short text of what was seen. `session.py` smooths these into detections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agent.perception.features import FINGERS, FrameFeatures, HandFeatures

_DEFAULTS = Path(__file__).with_name("defaults.yaml")
NAN = float("nan")


@dataclass
class Track:
    """What detectors read: one person's per-frame features and AU intensities, in time order."""

    frames: list[FrameFeatures]
    aus: list[dict[str, float]]
    step_s: float

    @property
    def times_s(self) -> np.ndarray:
        return np.array([f.time_s for f in self.frames], dtype=float)

    def series(self, part: str, key: str) -> np.ndarray:
        """One body/head value over time (NaN where absent)."""
        return np.array([getattr(f, part).get(key, NAN) for f in self.frames], dtype=float)


@dataclass
class Scored:
    """Per-frame output of one detector for one class."""

    scores: np.ndarray
    boxes: list[list[float] | None]
    cues: list[str]

    @classmethod
    def empty(cls, n: int) -> Scored:
        return cls(np.full(n, NAN), [None] * n, [""] * n)


@cache
def defaults() -> dict[str, Any]:
    """Default parameters per detector and for smoothing (`defaults.yaml`)."""
    return yaml.safe_load(_DEFAULTS.read_text(encoding="utf-8"))


def merged_params(detector: str, params: dict[str, Any]) -> dict[str, Any]:
    """Smoothing defaults, then the detector's defaults, then the class's own params."""
    table = defaults()
    return {**table["smoothing"], **table.get(detector, {}), **(params or {})}


# --- fuzzy matching helpers ------------------------------------------------------------------


def ramp(value: float, lo: float, hi: float) -> float:
    """0 at `lo`, 1 at `hi` (either order), linear between."""
    if hi == lo:
        return float(value >= hi)
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def within(value: float, lo: float, hi: float, margin: float) -> float:
    """1 inside [lo, hi], falling to 0 at `margin` outside."""
    if lo <= value <= hi:
        return 1.0
    gap = lo - value if value < lo else value - hi
    return float(max(0.0, 1.0 - gap / max(margin, 1e-9)))


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
    track: Track, score_hand: Callable[[FrameFeatures, HandFeatures], tuple[float, str]]
) -> Scored:
    """Best hand per frame: score, box and cue text."""
    out = Scored.empty(len(track.frames))
    for index, frame in enumerate(track.frames):
        best = (NAN, None, "")
        for hand in frame.hands:
            score, cue = score_hand(frame, hand)
            if not np.isnan(score) and (np.isnan(best[0]) or score > best[0]):
                best = (
                    score,
                    hand.box,
                    f"{hand.side} hand: {cue}" if hand.side != "unknown" else f"hand: {cue}",
                )
        out.scores[index], out.boxes[index], out.cues[index] = best
    return out


def hand_sign(track: Track, p: dict[str, Any]) -> Scored:
    """Static hand shapes: which digits are straight or curled, where they point."""
    return _per_hand(track, lambda frame, hand: hand_shape_score(hand, p))


def hand_near_face(track: Track, p: dict[str, Any]) -> Scored:
    """A hand at a face region (mouth, face, scalp), optionally in a given shape."""
    region = p["region"]
    key = {"mouth": "palm_mouth", "lips": "index_mouth", "face": "face_box", "scalp": "above_eyes"}[
        region
    ]
    limit = p["max_distance"]

    def score(frame: FrameFeatures, hand: HandFeatures) -> tuple[float, str]:
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


def windowed(track: Track, window_s: float):
    """For each frame, the indices of frames within ±window_s / 2."""
    times = track.times_s
    for index, time_s in enumerate(times):
        lo = np.searchsorted(times, time_s - window_s / 2, side="left")
        hi = np.searchsorted(times, time_s + window_s / 2, side="right")
        yield index, slice(lo, hi)


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
    scored = _oscillation(track, series, p, f"deg {axis}")
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


# --- head and face -----------------------------------------------------------------------------


def gaze_aversion(track: Track, p: dict[str, Any]) -> Scored:
    """Head (and eyes) turned away from the camera beyond an angle, held."""
    out = Scored.empty(len(track.frames))
    limit = p["max_gaze_offset_deg"]
    for index, frame in enumerate(track.frames):
        if not frame.head:
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


def au_prototype(track: Track, p: dict[str, Any]) -> Scored:
    """Emotion from FACS action units: the weighted mean of the prototype's AU intensities.

    `mode: absence` (neutral) scores how close every AU stays to the face's baseline.
    """
    out = Scored.empty(len(track.frames))
    weights = p.get("au_weights", {})
    for index, aus in enumerate(track.aus):
        if not aus:
            continue
        out.boxes[index] = track.frames[index].face_box
        if p.get("mode") == "absence":
            peak_au = max(aus, key=aus.get)
            out.scores[index] = ramp(aus[peak_au], 2 * p["max_activation"], p["max_activation"])
            out.cues[index] = (
                f"no action unit above {p['max_activation']} "
                f"(strongest {peak_au} {aus[peak_au]:.2f})"
            )
            continue
        known = {au: w for au, w in weights.items() if au in aus}
        if not known:
            continue
        total = sum(weights.values())
        score = sum(w * aus[au] for au, w in known.items()) / total
        # AUs that contradict the prototype (a lip-corner pull is not disgust).
        against = [w * aus[au] for au, w in p.get("au_against", {}).items() if au in aus]
        if against:
            score *= 1.0 - min(1.0, max(against))
        if p.get("unilateral") and "AU14" in aus:
            score = min(score, ramp(aus["AU14"], 0.0, p.get("min_asymmetry", 0.3)))
        out.scores[index] = score
        out.cues[index] = au_cue(aus, known)
    return out


def au_cue(aus: dict[str, float], weights: dict[str, float]) -> str:
    """'AU12 lip corner puller 0.80, AU6 cheek raiser 0.60' for the prototype's active AUs."""
    from agent.perception.features import au_calibration

    names = au_calibration()
    active = sorted(weights, key=lambda au: -aus[au] * weights[au])
    return (
        ", ".join(f"{au} {names[au]['name']} {aus[au]:.2f}" for au in active if aus[au] >= 0.1)
        or "weak AU evidence"
    )


# --- body ----------------------------------------------------------------------------------------


def posture_scores(frame: FrameFeatures, p: dict[str, Any]) -> dict[str, float]:
    """standing / sitting / lying memberships from torso tilt and thigh angle."""
    tilt = frame.body.get("torso_tilt_deg")
    if tilt is None:
        return {}
    thigh = frame.body.get("thigh_deg")
    # Torso near horizontal; beyond ~135 deg (upside down) the pose is not trusted at all.
    if tilt > 180.0 - p["lying_min_tilt_deg"] + p["angle_margin_deg"] * 2:
        return {}
    lying = ramp(tilt, p["lying_min_tilt_deg"] - p["angle_margin_deg"], p["lying_min_tilt_deg"])
    legs = [frame.body.get(f"leg_raise_{side}_deg") for side in ("l", "r")]
    if all(leg is not None for leg in legs):
        # Lying, the legs lie flat too; a torso tilted over standing legs is a bend or a pose.
        flat = min(within(leg, 60.0, 120.0, p["angle_margin_deg"]) for leg in legs)
        lying = min(lying, flat)
    upright = 1.0 - ramp(
        tilt, p["lying_min_tilt_deg"] - p["angle_margin_deg"], p["lying_min_tilt_deg"]
    )
    if thigh is None:
        return {"lying": lying, "ground": lying, "upright": upright}
    sitting = upright * ramp(
        thigh, p["sitting_min_thigh_deg"] - p["angle_margin_deg"], p["sitting_min_thigh_deg"]
    )
    standing = upright * ramp(
        thigh, p["standing_max_thigh_deg"] + p["angle_margin_deg"], p["standing_max_thigh_deg"]
    )
    return {
        "standing": standing,
        "sitting": sitting,
        "lying": lying,
        "ground": lying,
        "upright": upright,
    }


def posture(track: Track, p: dict[str, Any]) -> Scored:
    """One posture (`params.posture`: standing, sitting or lying) held over time."""
    out = Scored.empty(len(track.frames))
    for index, frame in enumerate(track.frames):
        scores = posture_scores(frame, p)
        if p["posture"] in scores:
            out.scores[index] = scores[p["posture"]]
            out.boxes[index] = frame.person_box
            out.cues[index] = (
                f"torso {frame.body.get('torso_tilt_deg', NAN):.0f} deg from vertical, "
                f"thighs {frame.body.get('thigh_deg', NAN):.0f} deg from hanging"
            )
    return out


def posture_transition(track: Track, p: dict[str, Any]) -> Scored:
    """sit_down / stand_up / fall: posture `from` within `window_s` before posture `to`.

    A fall also needs the hips to drop fast (torso lengths per second).
    """
    out = Scored.empty(len(track.frames))
    p = {**p, "from": p.get("from_posture", p.get("from")), "to": p.get("to_posture", p.get("to"))}
    memberships = [posture_scores(f, p) for f in track.frames]
    times = track.times_s
    hip = track.series("body", "hip_y")
    unit = track.series("body", "torso_len")
    for index, now in enumerate(memberships):
        if p["to"] not in now:
            continue
        out.scores[index] = 0.0
        start = np.searchsorted(times, times[index] - p["window_s"], side="left")
        before = [m.get(p["from"], 0.0) for m in memberships[start:index]]
        if not before:
            continue
        k = start + int(np.argmax(before))
        score = min(now[p["to"]], max(before))
        cue = f"{p['from']} at {times[k]:.1f} s, {p['to']} at {times[index]:.1f} s"
        if p.get("min_drop_speed") and index > k:
            speed = (
                (hip[index] - hip[k])
                / max(np.nanmean(unit[k : index + 1]), 1e-6)
                / (times[index] - times[k])
            )
            score = min(score, ramp(speed, p["min_drop_speed"] / 2, p["min_drop_speed"]))
            cue += f", hips dropping {speed:.1f} torso lengths/s"
        out.scores[index] = score
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = cue
    return out


def gait(track: Track, p: dict[str, Any]) -> Scored:
    """Walking: ankles alternating (their gap opening and closing) while the hips travel, the
    torso upright (a yoga pose also swings the ankles apart)."""
    out = Scored.empty(len(track.frames))
    gap = track.series("body", "ankle_gap")
    tilt = track.series("body", "torso_tilt_deg")
    hip_x = track.series("body", "hip_x") / np.maximum(track.series("body", "torso_len"), 1e-6)
    times = track.times_s
    for index, window in windowed(track, p["window_s"]):
        values = gap[window]
        if np.sum(~np.isnan(values)) < 3:
            continue
        swing = float(np.nanmax(values) - np.nanmin(values))
        xs, ts = hip_x[window], times[window]
        ok = ~np.isnan(xs)
        travel = (
            float(abs(xs[ok][-1] - xs[ok][0]) / max(ts[ok][-1] - ts[ok][0], 1e-6))
            if ok.sum() >= 2
            else 0.0
        )
        lean = float(np.nanmedian(tilt[window])) if np.any(~np.isnan(tilt[window])) else 0.0
        limit = p["max_torso_tilt_deg"]
        score = min(
            ramp(swing, p["min_ankle_swing"] / 2, p["min_ankle_swing"]),
            ramp(travel, p["min_speed"] / 2, p["min_speed"]),
            ramp(lean, limit + p["angle_margin_deg"], limit),
        )
        out.scores[index] = score
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = (
            f"ankle gap swings {swing:.2f} torso lengths, hips travel {travel:.2f} torso lengths/s"
        )
    return out


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


def people_motion(item, p: dict[str, Any], people, step_s: float) -> list:
    """Walking (or running) people among the tracked moving-person boxes, one per person.

    A track counts when it lasts `track_min_duration_s` and its straight-line travel per
    second, in body heights, lies in `track_speed` [lo, hi].
    """
    from agent.state import Detection

    out = []
    lo, hi = p["track_speed"]
    for person in people.tracks:
        duration_s = person.times_s[-1] - person.times_s[0]
        if duration_s < p["track_min_duration_s"]:
            continue
        travel = person.displacement(people.aspect)
        speed = travel / max(duration_s, 1e-6)
        score = min(
            ramp(travel, p["track_min_travel"] / 2, p["track_min_travel"]),
            within(speed, lo, hi, lo / 2),
        )
        if score < p["min_score"]:
            continue
        middle = len(person.boxes) // 2
        out.append(
            Detection(
                kind=item.kind,
                label=item.id,
                start_s=round(person.times_s[0], 3),
                end_s=round(person.times_s[-1] + step_s, 3),
                confidence=round(score, 3),
                bbox=person.boxes[middle],
                cues=(
                    f"person {person.person_id} travelled {travel:.1f} body heights in "
                    f"{duration_s:.1f} s ({speed:.2f} heights/s), seen {len(person.times_s)} times"
                ),
                person_id=person.person_id,
            )
        )
    return out
