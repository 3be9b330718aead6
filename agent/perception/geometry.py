"""Landmark ids of the mediapipe models, and the geometry every measurement is made with.

Coordinates are made isotropic first: mediapipe normalises x by width and y by height.
"""

from __future__ import annotations

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# Landmark ids of each finger's chain, base to tip (mediapipe hand model).
FINGER_CHAINS = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
WRIST, MIDDLE_MCP = 0, 9

# Face mesh ids (refined mesh, 478 points) used by the proxies below.
FACE = {
    "eye_outer_l": 33,
    "eye_inner_l": 133,
    "eye_outer_r": 263,
    "eye_inner_r": 362,
    "lid_top_l": 159,
    "lid_bottom_l": 145,
    "lid_top_r": 386,
    "lid_bottom_r": 374,
    "brow_inner_l": 55,
    "brow_inner_r": 285,
    "brow_outer_l": 46,
    "brow_outer_r": 276,
    "mouth_l": 61,
    "mouth_r": 291,
    "lip_top_outer": 0,
    "lip_top_inner": 13,
    "lip_bottom_inner": 14,
    "lip_bottom_outer": 17,
    "nose_tip": 1,
    "nose_base": 2,
    "chin": 152,
    "forehead": 10,
    "cheek_l": 234,
    "cheek_r": 454,
    "iris_l": 468,
    "iris_r": 473,
}

# Pose ids (mediapipe pose, 33 points).
POSE = {
    "nose": 0,
    "ear_l": 7,
    "ear_r": 8,
    "mouth_l": 9,
    "mouth_r": 10,
    "shoulder_l": 11,
    "shoulder_r": 12,
    "elbow_l": 13,
    "elbow_r": 14,
    "wrist_l": 15,
    "wrist_r": 16,
    "hip_l": 23,
    "hip_r": 24,
    "knee_l": 25,
    "knee_r": 26,
    "ankle_l": 27,
    "ankle_r": 28,
}
VISIBLE = 0.5


def isotropic(points: np.ndarray, aspect: float) -> np.ndarray:
    """x, y (and z) in the same unit (frame heights): x and z scaled by width / height."""
    out = np.array(points[:, :3], dtype=np.float64)
    out[:, 0] *= aspect
    out[:, 2] *= aspect
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Unsigned angle between two vectors, degrees."""
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom < 1e-12:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / denom, -1.0, 1.0))))


def direction_from_up(vector_xy: np.ndarray) -> float:
    """Angle of an image-plane vector from straight up (y grows downwards), degrees 0..180."""
    return angle_deg(np.asarray(vector_xy[:2], dtype=np.float64), np.array([0.0, -1.0]))


def distance(points: np.ndarray, a: int, b: int) -> float:
    """Distance between two landmarks of one set."""
    return float(np.linalg.norm(points[a] - points[b]))
