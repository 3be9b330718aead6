"""Action detectors: a person with an object at a body part, or a body held in exercise poses.

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

from agent.perception.rules import Scored, Track, ramp, windowed


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


def _pose_memberships(body: dict[str, float], p: dict[str, Any]) -> dict[str, float]:
    """How strongly one frame's pose is each kind of exercise pose (0..1)."""
    straight = p["straight_joint_deg"]
    margin = p["angle_margin_deg"]
    out: dict[str, float] = {}
    legs = []
    for side in ("l", "r"):
        raise_deg, knee = body.get(f"leg_raise_{side}_deg"), body.get(f"knee_{side}_deg")
        if raise_deg is not None and knee is not None:
            legs.append(
                min(
                    ramp(raise_deg, p["min_leg_raise_deg"] - margin, p["min_leg_raise_deg"]),
                    ramp(knee, straight - margin, straight),
                )
            )
    if legs:
        out["a leg raised straight"] = max(legs)
    if "hips_above_shoulders" in body:
        need = p["min_hips_above_shoulders"]
        out["hips above the shoulders"] = ramp(body["hips_above_shoulders"], need / 2, need)
    arms = []
    for side in ("l", "r"):
        raise_deg, elbow = body.get(f"arm_raise_{side}_deg"), body.get(f"elbow_{side}_deg")
        if raise_deg is None or elbow is None:
            arms = []
            break
        arms.append(
            min(
                ramp(raise_deg, p["min_arm_raise_deg"] - margin, p["min_arm_raise_deg"]),
                ramp(elbow, straight - margin, straight),
            )
        )
    if arms:
        out["both arms straight overhead"] = min(arms)
    if "ankle_gap" in body:
        need = p["min_stance"]
        out["a wide stance"] = ramp(body["ankle_gap"], need * 0.8, need)
    return out


def exercise_posture(track: Track, p: dict[str, Any]) -> Scored:
    """Exercise poses held over `window_s` while the hips stay in place."""
    out = Scored.empty(len(track.frames))
    memberships = [_pose_memberships(f.body, p) if f.body else None for f in track.frames]
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
