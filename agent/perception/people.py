"""Several people on wide scenes: person boxes, linked over time into tracks.

Holistic follows one person. On a wide view (people small) this module links person boxes
frame to frame by position, so each walker gets a `person_id` and a path. The boxes come from
the learned object detector where it is installed (people, not anything that moves); without
it, from background subtraction (OpenCV MOG2 on a small copy of the frame), which also
finds moving arms, cars and shadows. Only box summaries are kept, never pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Work size for background subtraction: people of ~60 px in a 576-line frame stay ~19 px tall.
_WORK_WIDTH = 240
# Above this share of foreground pixels the camera (or the light) moved: the frame is skipped
# and the background model starts again.
_CAMERA_MOTION = 0.25
_KERNEL_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
# A detector person box taller than this share of the frame is a close-up, not a walker.
_MAX_HEIGHT = 0.9
# Taller than wide: joins a person's limbs, not two people side by side.
_KERNEL_JOIN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 9))


@dataclass
class PersonTrack:
    """One moving person: the times and normalised [x, y, w, h] boxes where they were seen."""

    person_id: int
    times_s: list[float] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)

    def speed(self, aspect: float) -> float:
        """Mean speed of the box centre in body heights per second (0 with one sighting)."""
        if len(self.times_s) < 2:
            return 0.0
        centres = np.array([[(b[0] + b[2] / 2) * aspect, b[1] + b[3] / 2] for b in self.boxes])
        heights = np.array([b[3] for b in self.boxes])
        path = float(np.sum(np.linalg.norm(np.diff(centres, axis=0), axis=1)))
        span_s = self.times_s[-1] - self.times_s[0]
        return path / max(float(np.median(heights)), 1e-6) / max(span_s, 1e-6)

    def displacement(self, aspect: float) -> float:
        """Straight-line distance from first to last sighting, in body heights."""
        first, last = self.boxes[0], self.boxes[-1]
        dx = ((last[0] + last[2] / 2) - (first[0] + first[2] / 2)) * aspect
        dy = (last[1] + last[3] / 2) - (first[1] + first[3] / 2)
        return float(np.hypot(dx, dy)) / max(float(np.median([b[3] for b in self.boxes])), 1e-6)


class PeopleTracker:
    """Feed frames in time order with `update`; read `tracks` at the end."""

    def __init__(self, min_height: float = 0.04, max_gap_s: float = 3.0, gate: float = 1.2):
        self.min_height = min_height  # of the frame height: smaller blobs are noise
        self.max_gap_s = max_gap_s  # a track unseen this long is closed
        self.gate = gate  # match radius in body heights
        self.tracks: list[PersonTrack] = []
        self.aspect = 1.0
        self._model = None

    def update(
        self, frame_rgb: np.ndarray, time_s: float, people: list[list[float]] | None = None
    ) -> list[tuple[int, list[float]]]:
        """(person_id, box) of the people in this frame: the detector's person boxes when
        given (`people`), else the moving blobs."""
        height, width = frame_rgb.shape[:2]
        self.aspect = width / max(1, height)
        if people is None:
            boxes = self._moving_boxes(frame_rgb)
        else:
            # Walkers are upright: taller than wide (a seated close-up fills a squat box).
            boxes = [
                list(b)
                for b in people
                if self.min_height <= b[3] <= _MAX_HEIGHT and b[3] >= 1.5 * b[2] * self.aspect
            ]
        return [(self._assign(box, time_s).person_id, box) for box in boxes]

    def _moving_boxes(self, frame_rgb: np.ndarray) -> list[list[float]]:
        height, width = frame_rgb.shape[:2]
        size = (_WORK_WIDTH, max(2, round(_WORK_WIDTH * height / width)))
        small = cv2.resize(frame_rgb, size, interpolation=cv2.INTER_LINEAR)
        if self._model is None:
            self._model = cv2.createBackgroundSubtractorMOG2(
                history=30, varThreshold=16, detectShadows=True
            )
        foreground = self._model.apply(small)
        mask = (foreground > 200).astype(np.uint8)  # 127 marks shadows
        if mask.mean() > _CAMERA_MOTION:
            self._model = None
            return []
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL_OPEN)
        mask = cv2.dilate(mask, _KERNEL_JOIN)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        work_w, work_h = size
        out = []
        for x, y, w, h, _area in stats[1:]:
            if h >= self.min_height * work_h and h >= 0.8 * w:
                out.append([x / work_w, y / work_h, w / work_w, h / work_h])
        return out

    def _assign(self, box: list[float], time_s: float) -> PersonTrack:
        centre = np.array([(box[0] + box[2] / 2) * self.aspect, box[1] + box[3] / 2])
        best, best_distance = None, None
        for track in self.tracks:
            if time_s - track.times_s[-1] > self.max_gap_s or track.times_s[-1] == time_s:
                continue
            last = track.boxes[-1]
            other = np.array([(last[0] + last[2] / 2) * self.aspect, last[1] + last[3] / 2])
            distance = float(np.linalg.norm(centre - other)) / max(last[3], box[3])
            ratio = box[3] / max(last[3], 1e-6)
            if (
                distance <= self.gate
                and 0.5 <= ratio <= 2.0
                and (best_distance is None or distance < best_distance)
            ):
                best, best_distance = track, distance
        if best is None:
            best = PersonTrack(person_id=len(self.tracks) + 1)
            self.tracks.append(best)
        best.times_s.append(float(time_s))
        best.boxes.append([round(v, 4) for v in box])
        return best
