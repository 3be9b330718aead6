"""Action rules: postures and their transitions, gait, moving people, a person with an object
at a body part, exercise poses and joined hands.

`posture`, `posture_transition` and `gait` read the torso, thigh and ankle geometry of one
person; `people_motion` reads the tracked moving-person boxes.

`object_interaction` reads the learned object detector's boxes and the person's landmarks:
an action is the class's objects (`objects`, COCO labels) within `max_distance` face widths
of one of its body parts (`near`: mouth, eyes, hand, lap), optionally with the hands moving
fast (`min_hand_speed`, a swing). Objects are detected less often than landmarks
(Context.object_fps), so a frame uses the latest detection up to `hold_s` old.

`exercise_posture` needs no object: limbs far from any resting pose (a leg raised straight,
the hips above the shoulders, both arms straight overhead, a wide stance), held while the
person stays in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.perception.features import FrameFeatures
from agent.perception.rules.common import NAN, Scored, Track, ramp, windowed, within


def _point_to_box(point: tuple[float, float], box: tuple[float, ...], aspect: float) -> float:
    """Distance from a point to a normalised box, both in isotropic frame-height units."""
    x0, y0 = box[0] * aspect, box[1]
    x1, y1 = x0 + box[2] * aspect, y0 + box[3]
    dx = max(x0 - point[0], 0.0, point[0] - x1)
    dy = max(y0 - point[1], 0.0, point[1] - y1)
    return float(np.hypot(dx, dy))


def _held_objects(track: Track, hold_s: float) -> list[list | None]:
    """Per frame, the objects of the latest detector run at most `hold_s` before it."""
    held, latest, latest_s = [], None, -np.inf
    for frame in track.frames:
        if frame.objects is not None:
            latest, latest_s = frame.objects, frame.time_s
        held.append(latest if frame.time_s - latest_s <= hold_s + 1e-6 else None)
    return held


def _parts_near(frame, near: list[str]) -> dict[str, tuple[float, float]]:
    return {
        name: xy
        for name, xy in frame.parts.items()
        if name in near or (name.startswith("hand_") and "hand" in near)
    }


def _hand_speed(track: Track, index: int, window: slice) -> float:
    """Fastest hand travel in the window, in face widths per second (0 when unknown)."""
    best = 0.0
    frames = track.frames[window]
    for a, b in zip(frames, frames[1:], strict=False):
        unit = a.face_width or b.face_width
        if not unit or b.time_s <= a.time_s:
            continue
        for name, xy in a.parts.items():
            if name.startswith("hand_") and name in b.parts:
                step = np.hypot(b.parts[name][0] - xy[0], b.parts[name][1] - xy[1])
                best = max(best, float(step) / unit / (b.time_s - a.time_s))
    return best


def object_interaction(track: Track, p: dict[str, Any]) -> Scored:
    """An object of `objects` within `max_distance` face widths of a body part in `near`."""
    out = Scored.empty(len(track.frames))
    wanted = set(p["objects"])
    limit = p["max_distance"]
    low, high = p["object_score_range"]
    held = _held_objects(track, p["hold_s"])
    windows = dict(windowed(track, p["window_s"])) if p.get("min_hand_speed") else {}
    for index, frame in enumerate(track.frames):
        parts = _parts_near(frame, p["near"])
        unit = frame.face_width
        if held[index] is None or not parts or not unit:
            continue  # not observable: no detector run, nobody, or no scale
        best, cue, box = 0.0, "", None
        for seen in held[index]:
            if seen.label not in wanted:
                continue
            for part, xy in parts.items():
                distance = _point_to_box(xy, seen.box, frame.aspect) / unit
                score = min(ramp(distance, 2 * limit, limit), ramp(seen.score, low, high))
                if score > best:
                    where = "hand" if part.startswith("hand_") else part
                    best, box = score, list(seen.box)
                    cue = (
                        f"{seen.label.replace('_', ' ')} (detector {seen.score:.2f}) "
                        f"{distance:.1f} face widths from the {where}"
                    )
        if p.get("min_hand_speed") and best > 0:
            speed = _hand_speed(track, index, windows[index])
            best = min(best, ramp(speed, p["min_hand_speed"] / 2, p["min_hand_speed"]))
            cue += f", hands moving {speed:.1f} face widths/s"
        out.scores[index] = best
        out.boxes[index] = box or frame.person_box
        out.cues[index] = cue or f"none of {', '.join(sorted(wanted))} near the {p['near'][0]}"
    return out


def _limbs_raised_straight(
    body: dict[str, float], p: dict[str, Any], limb: str, joint: str
) -> list[float]:
    """Per side with both angles measured: how far the limb is raised past
    `min_<limb>_raise_deg` while its `joint` (knee, elbow) is straight (0..1)."""
    straight, margin = p["straight_joint_deg"], p["angle_margin_deg"]
    need = p[f"min_{limb}_raise_deg"]
    sides = []
    for side in ("l", "r"):
        raise_deg, bend = body.get(f"{limb}_raise_{side}_deg"), body.get(f"{joint}_{side}_deg")
        if raise_deg is not None and bend is not None:
            sides.append(
                min(ramp(raise_deg, need - margin, need), ramp(bend, straight - margin, straight))
            )
    return sides


def _pose_memberships(body: dict[str, float], p: dict[str, Any]) -> dict[str, float]:
    """How strongly one frame's pose is each kind of exercise pose (0..1)."""
    out: dict[str, float] = {}
    legs = _limbs_raised_straight(body, p, "leg", "knee")
    if legs:
        out["a leg raised straight"] = max(legs)
    if "hips_above_shoulders" in body:
        need = p["min_hips_above_shoulders"]
        out["hips above the shoulders"] = ramp(body["hips_above_shoulders"], need / 2, need)
    # Both arms overhead: one arm up is reaching or waving, not an exercise pose.
    arms = _limbs_raised_straight(body, p, "arm", "elbow")
    if len(arms) == 2:
        out["both arms straight overhead"] = min(arms)
    if "ankle_gap" in body:
        need = p["min_stance"]
        out["a wide stance"] = ramp(body["ankle_gap"], need * 0.8, need)
    return out


def exercise_posture(track: Track, p: dict[str, Any]) -> Scored:
    """Exercise poses held over `window_s` while the hips stay in place."""
    out = Scored.empty(len(track.frames))
    # A whole body is needed: from arms and hands alone (a table-top view) the pose reads
    # upside down.
    memberships = [
        _pose_memberships(f.body, p) if _legs_seen(f.body) else None for f in track.frames
    ]
    hip_x = track.series("body", "hip_x") / np.maximum(track.series("body", "torso_len"), 1e-6)
    times = track.times_s
    for index, window in windowed(track, p["window_s"]):
        seen = [m for m in memberships[window] if m]
        if memberships[index] is None or len(seen) < 2:
            continue
        # The share of the window spent in some exercise pose (a pose held, or a sequence).
        best = [max(m.values()) if m else 0.0 for m in seen]
        share = float(np.mean(best))
        xs, ts = hip_x[window], times[window]
        ok = ~np.isnan(xs)
        speed = 0.0
        if ok.sum() >= 2:
            speed = abs(xs[ok][-1] - xs[ok][0]) / max(ts[ok][-1] - ts[ok][0], 1e-6)
        score = min(share, ramp(speed, 2 * p["max_travel_speed"], p["max_travel_speed"]))
        current = memberships[index]
        pose = max(current, key=current.get) if current else "no exercise pose"
        out.scores[index] = score
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = (
            f"{pose} now; exercise poses {share:.0%} of the last {p['window_s']:.0f} s, "
            f"hips travel {speed:.2f} torso lengths/s"
        )
    return out


def _legs_seen(body: dict[str, float]) -> bool:
    return any(f"leg_raise_{side}_deg" in body for side in ("l", "r"))


def joined_hands(track: Track, p: dict[str, Any]) -> Scored:
    """Two hands gripping each other that do not both belong to the tracked person: two
    people joined at the hands (arm wrestling, a handshake).

    The holistic model attaches hands to the person's wrists; hands found without a body
    (`side` "unknown") may belong to anyone. A pair counts when the hands' centres are within
    `max_gap` palm lengths and at least one of them is not the tracked person's own hand, so a
    person clasping their own hands does not count.
    """
    out = Scored.empty(len(track.frames))
    limit = p["max_gap"]
    for index, frame in enumerate(track.frames):
        if not frame.hands:
            continue
        best, cue = 0.0, f"{len(frame.hands)} hand(s), not joined"
        for i, a in enumerate(frame.hands):
            for b in frame.hands[i + 1 :]:
                if a.side != "unknown" and b.side != "unknown":
                    continue  # both are the tracked person's own hands
                gap = _centre_gap(a, b, frame.aspect) / max((a.palm_size + b.palm_size) / 2, 1e-6)
                score = ramp(gap, 2 * limit, limit)
                if score > best:
                    best = score
                    cue = f"two hands gripping each other ({gap:.1f} palm lengths apart)"
        out.scores[index] = best
        out.boxes[index] = frame.hands[0].box
        out.cues[index] = cue
    return out


def _centre_gap(a, b, aspect: float) -> float:
    """Distance between two hand boxes' centres, isotropic frame-height units."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a.box, b.box
    return float(np.hypot((ax + aw / 2 - bx - bw / 2) * aspect, ay + ah / 2 - by - bh / 2))


# --- postures and gait ------------------------------------------------------------------------


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
    elif p["lying_needs_legs"]:
        # Without the legs (hands and torso over a worktop) a tilted torso is no evidence.
        lying = 0.0
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
        # The latest moment of the first posture (held before it, see below).
        k = start + len(before) - 1 - int(np.argmax(before[::-1]))
        # Both postures held (a dancer's squat is no sitting down): the lowest membership
        # over `min_hold_s` before the change and after it.
        hold_s = p["min_hold_s"]
        first = np.searchsorted(times, times[k] - hold_s + 1e-6, side="left")
        last = np.searchsorted(times, times[index] + hold_s - 1e-6, side="right")
        held_from = min(m.get(p["from"], 0.0) for m in memberships[first : k + 1])
        held_to = min(m.get(p["to"], 0.0) for m in memberships[index:last])
        if hold_s > 0 and (last - index < 2 or k - first < 1):
            held_to = 0.0
        score = min(now[p["to"]], max(before), held_from, held_to)
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
    if not p["from_landmarks"]:
        # Only the tracked moving people (`people_motion`) speak for this class.
        return out
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
            _at_most(travel, p["max_speed"]),
            _at_most(swing, p["max_ankle_swing"]),
            ramp(lean, limit + p["angle_margin_deg"], limit),
        )
        out.scores[index] = score
        out.boxes[index] = track.frames[index].person_box
        out.cues[index] = (
            f"ankle gap swings {swing:.2f} torso lengths, hips travel {travel:.2f} torso lengths/s"
        )
    return out


def _at_most(value: float, limit: float) -> float:
    """1 up to `limit`, falling to 0 at 1.5 x `limit` (no limit when it is infinite)."""
    return 1.0 if np.isinf(limit) else ramp(value, 1.5 * limit, limit)


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
        if score < p["track_min_score"]:
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
