"""Constructed mediapipe pose landmark sets (33 points, normalised x, y, z, visibility)."""

import numpy as np


def make_pose(sitting: bool = False, lying: bool = False) -> np.ndarray:
    """33 pose points of an upright person (or sitting: thighs level; lying: torso level)."""
    pose = np.zeros((33, 4))
    pose[:, 3] = 1.0
    spots = {
        0: (0.5, 0.1),
        11: (0.45, 0.25),
        12: (0.55, 0.25),
        13: (0.42, 0.38),
        14: (0.58, 0.38),
        15: (0.42, 0.5),
        16: (0.58, 0.5),
        23: (0.47, 0.55),
        24: (0.53, 0.55),
        25: (0.47, 0.75),
        26: (0.53, 0.75),
        27: (0.47, 0.95),
        28: (0.53, 0.95),
    }
    for index, xy in spots.items():
        pose[index, :2] = xy
    if sitting:
        pose[25, :2], pose[26, :2] = (0.3, 0.57), (0.36, 0.57)
        pose[27, :2], pose[28, :2] = (0.3, 0.77), (0.36, 0.77)
    if lying:
        pose[:, :2] = np.stack([pose[:, 1], 1.0 - pose[:, 0]], axis=1)  # rotate 90 degrees
    return pose
