"""Synthetic test media written with OpenCV: known scenes, cuts, fps and sizes."""

from pathlib import Path

import cv2
import numpy as np

# Distinct scene looks (BGR base colour); each scene also gets a moving bar so frames differ.
SCENE_COLOURS = [(40, 40, 200), (200, 60, 30), (30, 180, 40), (200, 200, 200), (20, 20, 20)]


def write_video(
    path: Path,
    scene_seconds: list[float],
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    codec: str = "mp4v",
) -> Path:
    """A video made of scenes of the given lengths; a hard cut at each scene boundary.

    Frame n belongs to scene k while n / fps < sum(scene_seconds[: k + 1]).
    """
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with codec {codec}")
    boundaries = np.cumsum(scene_seconds)
    total_frames = int(round(boundaries[-1] * fps))
    rng = np.random.default_rng(0)
    for index in range(total_frames):
        scene = int(np.searchsorted(boundaries, index / fps, side="right"))
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = SCENE_COLOURS[scene % len(SCENE_COLOURS)]
        frame = cv2.add(frame, rng.integers(0, 25, frame.shape, dtype=np.uint8))
        bar_x = (index * 4) % max(1, width - 20)
        cv2.rectangle(frame, (bar_x, height // 3), (bar_x + 20, height // 2), (128, 128, 128), -1)
        writer.write(frame)
    writer.release()
    return path


def cut_times(scene_seconds: list[float]) -> list[float]:
    """Times of the cuts between the scenes of `write_video`."""
    return [float(t) for t in np.cumsum(scene_seconds)[:-1]]
