"""Whether a hand is one a person would read a sign from: large enough, held still, not
part of a swipe, not gripping an object."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

import numpy as np

from agent.perception.features import HandFeatures, overlap
from agent.perception.rules.common import Track, ramp


def deliberate_hand(
    track: Track, index: int, hand: HandFeatures, objects: list, p: dict[str, Any]
) -> tuple[float, str]:
    """0..1: whether a hand is one a person would read a sign from, and why not.

    Small hands (palm under `min_palm` of the frame height) are a few pixels of guesses; a
    hand that moved more than `max_hand_motion` palm lengths since the neighbouring sample
    is passing through a shape, not showing it; a hand held, swept across and held again is a
    swipe (see `_swiped_from`); a hand overlapping a held object grips it.
    """
    need = p["min_palm"]
    size = ramp(hand.palm_size, 0.75 * need, need)
    if size < 1.0:
        return size, f"hand too small to read (palm {hand.palm_size:.2f} of the frame)"
    if hand.to_face:
        # Beside a face a real hand's palm is ~0.5 face widths: far smaller is a misread
        # hand (fingers on a cheek, a brush); fingertips on the lips are a touch, not a sign.
        scale = hand.to_face["hand_scale"]
        if scale < p["min_hand_scale"]:
            return 0.0, f"hand implausibly small beside the face ({scale:.2f} face widths)"
        gap = hand.to_face["mouth"]
        lips = ramp(gap, 0.5 * p["min_mouth_gap"], p["min_mouth_gap"])
        if lips < 1.0 and not hand.to_face.get("depth_in_front", 0.0) > p["max_depth_in_front"]:
            return lips, f"fingertip on the lips ({gap:.2f} face widths)"
    if len(track.frames) > 1:
        motion = _hand_motion(track, index, hand)
        limit = p["max_hand_motion"]
        still = ramp(motion, 2 * limit, limit)
        if still < 1.0:
            return still, f"hand moving ({motion:.1f} palm lengths between samples)"
        swipe = _swiped_from(track, index, hand, p)
        if swipe is not None:
            distance, at_s = swipe
            return 0.0, (
                f"hand swept {distance:.1f} palm lengths from where it was held at {at_s:.1f} s"
                " (a swipe, not a sign)"
            )
    grown = _grown(hand.box, p["grip_margin"])
    for seen in objects:
        if overlap(seen.box, grown) >= p["min_grip_overlap"]:
            return 0.0, f"hand on a {seen.label.replace('_', ' ')}"
    return 1.0, "held still"


def _hand_motion(track: Track, index: int, hand: HandFeatures) -> float:
    """Palm lengths the hand moved to its nearest counterpart in the previous or next sample
    (infinite where neither sample has a hand: a shape seen once is not a held sign)."""
    moves = []
    for other in (index - 1, index + 1):
        if 0 <= other < len(track.frames):
            moves += [_palm_lengths(hand, seen) for seen in track.frames[other].hands]
    return min(moves) if moves else float("inf")


def _palm_lengths(hand: HandFeatures, other: HandFeatures) -> float:
    """How far `other`'s wrist is from `hand`'s, in `hand`'s palm lengths."""
    dx = other.wrist_xy[0] - hand.wrist_xy[0]
    dy = other.wrist_xy[1] - hand.wrist_xy[1]
    return float(np.hypot(dx, dy)) / max(hand.palm_size, 1e-6)


def _swiped_from(
    track: Track, index: int, hand: HandFeatures, p: dict[str, Any]
) -> tuple[float, float] | None:
    """(palm lengths, time) of a hold of the same hand within `swipe_window_s` of this one
    and at least `min_swipe` palm lengths away, or None.

    Dynamic gestures (swipes, HaGRID-dynamic style) hold a shape, sweep the hand across and
    hold it again: each hold looks like a still sign at any sampling rate (the hand really
    stops), but a sign a person shows stays where it is shown.
    """
    here_s = track.frames[index].time_s
    window_s = p["swipe_window_s"] + 1e-6
    lo = bisect_left(track.frames, here_s - window_s, key=lambda f: f.time_s)
    hi = bisect_right(track.frames, here_s + window_s, key=lambda f: f.time_s)
    alone = len(track.frames[index].hands) == 1
    for other in range(lo, hi):
        frame = track.frames[other]
        for seen in frame.hands if other != index else ():
            if not _same_hand(hand, seen, alone and len(frame.hands) == 1):
                continue
            if seen.palm_size < p["min_palm"]:
                continue
            if _hand_motion(track, other, seen) > p["max_hand_motion"]:
                continue  # passing through, not held there
            distance = _palm_lengths(hand, seen)
            if distance >= p["min_swipe"]:
                return distance, frame.time_s
    return None


def _same_hand(a: HandFeatures, b: HandFeatures, alone: bool) -> bool:
    """Whether two readings are one hand: the same side where both sides are known, else
    only when each frame has that one hand."""
    if a.side != "unknown" and b.side != "unknown":
        return a.side == b.side
    return alone


def handheld_objects(track: Track, p: dict[str, Any]) -> list[list]:
    """Per frame: the objects (not people, not furniture-sized) the detector saw within
    `object_window_s` of it (the detector runs about once a second)."""
    seen = [(f.time_s, f.objects) for f in track.frames if f.objects is not None]
    seen_s = np.array([at_s for at_s, _ in seen], dtype=float)
    window_s = p["object_window_s"] + 1e-6
    out = []
    for frame in track.frames:
        lo = int(np.searchsorted(seen_s, frame.time_s - window_s, side="left"))
        hi = int(np.searchsorted(seen_s, frame.time_s + window_s, side="right"))
        out.append(
            [
                o
                for _, objects in seen[lo:hi]
                for o in objects
                if o.label != "person" and o.box[2] * o.box[3] <= p["max_object_area"]
            ]
        )
    return out


def _grown(box: list[float], margin: float) -> list[float]:
    x, y, w, h = box
    return [x - margin * w, y - margin * h, w * (1 + 2 * margin), h * (1 + 2 * margin)]
