"""Facial-expression classifier: a face crop → probabilities over knowledge-base emotion ids.

The installed expression models (see `models.yaml`) each see the same square crop around the
face box that mediapipe's face mesh found, prepared as the model was trained (size, grey or
colour, value range). Their probabilities are averaged: the two models were trained on
different data and make different mistakes, so the mean is steadier than either.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from agent.perception.learned.manifest import ModelSpec
from agent.perception.learned.runtime import TfliteModel

# The crop is the face-mesh box grown by this factor: the classifiers were trained on face
# detector boxes, which include some forehead and chin beyond the mesh.
_CROP_MARGIN = 1.15


def square_crop(frame_rgb: np.ndarray, box: list[float], margin: float = _CROP_MARGIN):
    """The square around a normalised [x, y, w, h] box, edge pixels repeated past the border."""
    height, width = frame_rgb.shape[:2]
    x, y, w, h = box
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    side = max(2, int(round(max(w * width, h * height) * margin)))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        frame_rgb = cv2.copyMakeBorder(frame_rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return frame_rgb[y0 : y0 + side, x0 : x0 + side]


def prepare(crop_rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """One model's input tensor (H, W, C) from a face crop."""
    size = spec.input.size
    interpolation = cv2.INTER_AREA if crop_rgb.shape[0] > size else cv2.INTER_LINEAR
    resized = cv2.resize(crop_rgb, (size, size), interpolation=interpolation)
    if spec.input.colour == "rgb":
        image = resized
    else:
        grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
        channels = 1 if spec.input.colour == "grey" else 3
        image = np.repeat(grey[:, :, None], channels, axis=2)
    low, high = spec.input.scale
    return image.astype(np.float32) / 255.0 * (high - low) + low


class ExpressionClassifier:
    """Mean expression probabilities of the installed expression models."""

    def __init__(self, specs: list[ModelSpec], models_dir: Path):
        if not specs:
            raise ValueError("ExpressionClassifier needs at least one expression model")
        self.specs = specs
        self._models = [TfliteModel(spec.path(models_dir)) for spec in specs]
        self.labels = sorted({label for spec in specs for label in spec.labels})

    def classify(self, frame_rgb: np.ndarray, face_box: list[float]) -> dict[str, float]:
        """{emotion id: probability} for the face in `face_box` (normalised [x, y, w, h])."""
        crop = square_crop(frame_rgb, face_box)
        total = dict.fromkeys(self.labels, 0.0)
        for spec, model in zip(self.specs, self._models, strict=True):
            probabilities = model(prepare(crop, spec)[None])[0]
            for label, p in zip(spec.labels, probabilities, strict=True):
                total[label] += float(p) / len(self.specs)
        return total
