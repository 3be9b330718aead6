"""Speech rule: talking seen as the lips opening and closing, over and over, in a face mesh.

`mouth_movement` reads the inner-lip gap (`face_raw["lip_gap"]`, in eye spans, so camera
distance cancels) over a sliding window and counts its turns: a talking mouth opens and closes
several times a second, a smile or a yawn opens once and stays. At low sampling rates the
syllables alias, but the gap still swings between samples, which is what is counted. A face too
small in the frame to measure lips is not observed (NaN), and neither is a still image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.perception.rules.common import Scored, Track, ramp, windowed


def lip_turns(gaps: np.ndarray, min_step: float) -> int:
    """Openings and closings of a lip-gap series: direction changes between its turning
    points, where only moves of at least `min_step` count (landmark jitter is smaller)."""
    values = gaps[~np.isnan(gaps)]
    if len(values) < 2:
        return 0
    turns, direction, anchor = 0, 0, values[0]
    for value in values[1:]:
        step = value - anchor
        if direction >= 0 and step <= -min_step:
            turns += direction > 0
            direction, anchor = -1, value
        elif direction <= 0 and step >= min_step:
            turns += direction < 0
            direction, anchor = 1, value
        elif (direction > 0 and value > anchor) or (direction < 0 and value < anchor):
            anchor = value
    return turns


def measurable_gaps(track: Track, min_face_px: float) -> np.ndarray:
    """The lip gap per frame, NaN where no face was measured or it is under `min_face_px`
    pixels tall (there, one pixel of landmark jitter is a large share of the mouth)."""
    out = np.full(len(track.frames), np.nan)
    for index, frame in enumerate(track.frames):
        gap = frame.face_raw.get("lip_gap")
        if gap is None or frame.face_box is None:
            continue
        if frame.height_px and frame.face_box[3] * frame.height_px < min_face_px:
            continue
        out[index] = gap
    return out


def mouth_movement(track: Track, p: dict[str, Any]) -> Scored:
    """Per-frame talking score: lip turns in the window around the frame, against
    `min_turns`; frames without a measurable mouth are NaN."""
    out = Scored.empty(len(track.frames))
    gaps = measurable_gaps(track, p["min_face_px"])
    for index, window in windowed(track, p["window_s"]):
        if np.isnan(gaps[index]):
            continue
        values = gaps[window]
        if np.sum(~np.isnan(values)) < p["min_frames"]:
            continue
        turns = lip_turns(values, p["min_step"])
        swing = float(np.nanmax(values) - np.nanmin(values))
        out.scores[index] = ramp(turns, p["min_turns"] - 1, p["min_turns"] + 1)
        out.boxes[index] = track.frames[index].face_box
        out.cues[index] = (
            f"lips opened and closed {turns} times in {p['window_s']:g} s "
            f"(lip gap swing {swing:.2f} eye spans)"
        )
    return out
