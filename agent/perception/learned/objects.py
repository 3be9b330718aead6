"""COCO object detector: a frame → objects (label, score, normalised box).

CenterNet predicts, on a grid of stride 4 over a 512 x 512 input, a heatmap per class and the
distances from each cell to the box's four sides. A peak is a cell that is the maximum of its
3 x 3 neighbourhood; the strongest peaks become boxes. The frame is resized to the square
input without letterboxing (as the model was used upstream), so normalised coordinates map
straight back to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.perception.learned.manifest import ModelSpec
from agent.perception.learned.runtime import OnnxModel

# Boxes of one class overlapping more than this are the same object seen twice.
_SAME_OBJECT_IOU = 0.5


@dataclass(frozen=True)
class SeenObject:
    """One detected object: COCO label, detector score, normalised [x, y, w, h] box."""

    label: str
    score: float
    box: tuple[float, float, float, float]


def peaks(
    heatmap: np.ndarray, top_k: int, min_score: float | None = None
) -> tuple[np.ndarray, ...]:
    """(ys, xs, classes, scores) of the `top_k` strongest 3 x 3 local maxima of (H, W, C);
    with `min_score`, only those scoring at least that."""
    if min_score is not None:
        return _strong_peaks(heatmap, top_k, min_score)
    padded = np.pad(heatmap, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
    local_max = windows.max(axis=(-2, -1))
    kept = np.where(heatmap == local_max, heatmap, 0.0).reshape(-1)
    order = np.argpartition(-kept, min(top_k, kept.size - 1))[:top_k]
    order = order[np.argsort(-kept[order])]
    channels = heatmap.shape[2]
    cells, classes = np.divmod(order, channels)
    ys, xs = np.divmod(cells, heatmap.shape[1])
    return ys, xs, classes, kept[order]


def _strong_peaks(heatmap: np.ndarray, top_k: int, min_score: float) -> tuple[np.ndarray, ...]:
    """The peaks of `peaks` at or above `min_score`, looked for only among the few cells that
    high (a 128 x 128 x 80 map has ~1.3M cells; a frame's objects, a few hundred)."""
    ys, xs, classes = np.nonzero(heatmap >= min_score)
    scores = heatmap[ys, xs, classes]
    height, width = heatmap.shape[:2]
    # Clipping at the border repeats a cell of the window, which leaves its maximum alone.
    local_max = scores.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            around = heatmap[
                np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1), classes
            ]
            np.maximum(local_max, around, out=local_max)
    keep = scores == local_max
    ys, xs, classes, scores = ys[keep], xs[keep], classes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:top_k]
    return ys[order], xs[order], classes[order], scores[order]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class ObjectDetector:
    """The installed COCO detector, with peak decoding and per-class de-duplication."""

    def __init__(self, spec: ModelSpec, models_dir: Path, min_score: float):
        self.spec = spec
        self.min_score = min_score
        self._model = OnnxModel(spec.path(models_dir))
        self._size = spec.input.size
        self._stride = spec.decode["stride"]
        self._top_k = spec.decode["top_k"]

    def detect(self, frame_rgb: np.ndarray) -> list[SeenObject]:
        """Objects in one RGB frame, strongest first."""
        image = cv2.resize(frame_rgb, (self._size, self._size), interpolation=cv2.INTER_AREA)
        heatmap, sides = self._model(image[None].astype(np.float32))
        ys, xs, classes, scores = peaks(heatmap[0], self._top_k, self.min_score)
        found: list[SeenObject] = []
        for y, x, label_index, score in zip(ys, xs, classes, scores, strict=True):
            if score < self.min_score:
                break
            left, top, right, bottom = sides[0, y, x]
            cx, cy = x * self._stride, y * self._stride
            x0, y0 = max(0.0, cx - left), max(0.0, cy - top)
            x1, y1 = min(float(self._size), cx + right), min(float(self._size), cy + bottom)
            if x1 <= x0 or y1 <= y0:
                continue
            box = tuple(round(v / self._size, 4) for v in (x0, y0, x1 - x0, y1 - y0))
            candidate = SeenObject(self.spec.labels[label_index], round(float(score), 3), box)
            if all(
                o.label != candidate.label or iou(o.box, candidate.box) < _SAME_OBJECT_IOU
                for o in found
            ):
                found.append(candidate)
        return found
