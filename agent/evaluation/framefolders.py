"""Clips stored as folders of frame images (FERV39k, some DFEW/MAFW releases) read like videos.

A folder's frames are its image files in name order, at a frame rate the task file states
(`options.fps`); sampling reuses the video layer's rule, so frames and timestamps match what a
video of the same frames would give.
"""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from agent.context import Context
from agent.errors import VideoError
from agent.state import VideoInfo
from agent.video import IMAGE_SUFFIXES, FrameBatch, read_image, sample_indices


def frame_files(folder: str | Path) -> list[Path]:
    """The folder's image files in name order; VideoError when there are none."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"'{folder}' holds no image frames (png, jpg, ...); is it a clip folder?")
    return files


def folder_info(folder: str | Path, fps: float) -> VideoInfo:
    """VideoInfo of a frame folder (size from its first frame; no content hash)."""
    files = frame_files(folder)
    height, width = read_image(files[0]).shape[:2]
    return VideoInfo(
        path=str(folder),
        duration_s=len(files) / fps,
        fps=fps,
        frame_count=len(files),
        width=width,
        height=height,
        sha256="",
    )


def iter_folder_frames(
    folder: str | Path,
    fps: float,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    sample_fps: float | None = None,
    num_frames: int | None = None,
    ctx: Context,
) -> Iterator[FrameBatch]:
    """Sampled frames of `[start_s, end_s)` in batches, like `agent.video.iter_frames`."""
    files = frame_files(folder)
    starts = np.arange(len(files)) / fps
    indices = sample_indices(starts, start_s, end_s, fps=sample_fps, num_frames=num_frames)
    for offset in range(0, len(indices), ctx.decode_batch):
        chunk = indices[offset : offset + ctx.decode_batch]
        frames = np.stack([_capped(read_image(files[i]), ctx.decode_max_side) for i in chunk])
        yield FrameBatch(frames, chunk, starts[chunk])


def sample_folder_frames(
    folder: str | Path,
    fps: float,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    num_frames: int,
    ctx: Context | None = None,
) -> FrameBatch:
    """`num_frames` frames spread uniformly over the span, in one batch."""
    batches = list(iter_folder_frames(folder, fps, start_s, end_s, num_frames=num_frames, ctx=ctx))
    if not batches:
        raise VideoError(f"No frames of '{folder}' fall in {start_s:.2f}-{end_s} s.")
    return FrameBatch(
        np.concatenate([b.frames for b in batches]),
        np.concatenate([b.frame_indices for b in batches]),
        np.concatenate([b.timestamps_s for b in batches]),
    )


def _capped(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Downscaled so the long side is at most `max_side` (frames of one clip share a size)."""
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
