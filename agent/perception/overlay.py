"""Key-frame overlays for evidence thumbnails: landmarks, boxes and labels drawn on a frame."""

from __future__ import annotations

import os

import cv2
import numpy as np

from agent.context import Context
from agent.perception.landmarks import FrameLandmarks, Perceiver
from agent.state import Detection
from agent.video import is_image, read_image, sample_frames

_COLOURS = {"emotion": (255, 200, 0), "gesture": (0, 220, 120), "action": (80, 160, 255)}


def _box_px(box: list[float], width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y, w, h = box
    return (int(x * width), int(y * height)), (int((x + w) * width), int((y + h) * height))


def draw_overlay(
    frame_rgb: np.ndarray,
    landmarks: FrameLandmarks | None = None,
    detections: list[Detection] | None = None,
) -> np.ndarray:
    """A copy of the frame with landmark points, face/hand boxes and detection labels."""
    out = np.ascontiguousarray(frame_rgb.copy())
    height, width = out.shape[:2]
    thick = max(1, round(max(width, height) / 500))
    for person in landmarks.persons if landmarks else []:
        parts = [
            (
                person.pose[person.pose[:, 3] > 0.5, :2] if person.pose is not None else None,
                (80, 160, 255),
            )
        ]
        parts.append((person.face[::4, :2] if person.face is not None else None, (255, 255, 255)))
        parts.extend((hand.points[:, :2], (0, 220, 120)) for hand in person.hands)
        for points, colour in parts:
            if points is None:
                continue
            for x, y in points:
                cv2.circle(out, (int(x * width), int(y * height)), thick + 1, colour, -1)
        for box in [person.face_box, *(hand.box for hand in person.hands)]:
            if box:
                cv2.rectangle(out, *_box_px(box, width, height), (255, 255, 255), thick)
    for det in detections or []:
        colour = _COLOURS.get(det.kind, (255, 255, 255))
        box = det.bbox or [0.01, 0.01, 0.3, 0.1]
        top_left, bottom_right = _box_px(box, width, height)
        cv2.rectangle(out, top_left, bottom_right, colour, thick + 1)
        text = f"{det.label} {det.confidence:.2f}"
        cv2.putText(
            out,
            text,
            (top_left[0], max(12, top_left[1] - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick + 0.2,
            colour,
            thick,
            cv2.LINE_AA,
        )
    return out


def render_overlay(
    path: str | os.PathLike,
    time_s: float,
    ctx: Context,
    detections: list[Detection] | None = None,
    perceiver: Perceiver | None = None,
) -> np.ndarray:
    """The frame at `time_s` (or the still) with landmarks, boxes and the detections active then."""
    if is_image(path):
        frame = read_image(path)
    else:
        frame = sample_frames(
            path, time_s, time_s + 1e-3 + 1.0 / 1000, num_frames=1, ctx=ctx
        ).frames[0]
    owned = perceiver is None
    perceiver = perceiver or Perceiver(ctx)
    try:
        landmarks = perceiver.process(frame, time_s, still=True)
    finally:
        if owned:
            perceiver.close()
    active = [d for d in detections or [] if d.start_s - 1e-6 <= time_s <= d.end_s + 1e-6]
    return draw_overlay(frame, landmarks, active)
