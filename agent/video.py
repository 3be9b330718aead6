"""The video layer (decord lives here and nowhere else): probe, sample frames, segment into clips.

Memory stays flat on any video length: only the sampled frame indices are decoded, a batch at a
time, at a size capped by `Context.decode_max_side`. Timestamps are the reader's, not idx / fps.
"""

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from agent.context import Context
from agent.errors import VideoError
from agent.quiet import native_stderr_silenced
from agent.state import Clip, VideoInfo

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
_HASH_CHUNK = 1 << 20
# Thumbnail long side used for shot detection when no caller needs full frames.
_SHOT_DETECT_SIDE = 160
# Sampled frames farther apart than this are sought rather than decoded up to: 250 frames is
# x264's default keyframe interval, so a seek would re-decode about as many.
_SEEK_BEYOND_FRAMES = 250

_FIX_HINT = (
    "Check that it is a video file (mp4, mkv, avi, mov, webm) and that it was copied completely; "
    "re-encoding often repairs it: `ffmpeg -i INPUT -c:v libx264 -pix_fmt yuv420p OUTPUT.mp4`."
)


@dataclass
class FrameBatch:
    """Decoded RGB frames (N, H, W, 3 uint8) with their frame indices and reader timestamps."""

    frames: np.ndarray
    frame_indices: np.ndarray
    timestamps_s: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_indices)


def is_image(path: str | os.PathLike) -> bool:
    """True for still-image files (by suffix); those go through `read_image`, not decord."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike, ctx: Context | None = None) -> np.ndarray:
    """An RGB uint8 array from a still image, upright. Pillow, because OpenCV rejects some
    valid PNGs; phone photos are stored sideways with an EXIF orientation tag, which is
    applied so that a raised hand points up. With `ctx`, a still above its pixel cap is
    refused from the header, before any pixel is decoded."""
    path = _existing_file(path)
    try:
        with Image.open(path) as image:
            if ctx is not None:
                _check_frame_pixels(path, *image.size, ctx)
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except Image.DecompressionBombError as error:
        raise VideoError(
            f"'{path}' is too large to decode safely ({error}). Downscale it, e.g. "
            "`convert INPUT -resize 8000x8000 OUTPUT.jpg`."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise VideoError(
            f"Cannot read '{path}' as an image ({error}). The file is damaged or not an image: "
            "re-export it as PNG, JPEG, BMP or WebP."
        ) from None


def sha256_file(path: str | os.PathLike) -> str:
    """Content hash of a file, read in 1 MiB chunks (no whole-file read)."""
    stat = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def probe(path: str | os.PathLike, ctx: Context) -> VideoInfo:
    """Duration, fps, frame count, size and content hash of a video; VideoError if unusable."""
    path = _existing_file(path)
    if is_image(path):
        return _probe_still(path, ctx)
    width, height = _native_size(path)
    _check_frame_pixels(path, width, height, ctx)
    reader = _open_reader(path, max_side=_SHOT_DETECT_SIDE)
    frame_count = len(reader)
    # The last frame is decoded too: a truncated file opens fine and fails only at its end.
    _decode(reader, [frame_count - 1], path)
    timestamps = reader.get_frame_timestamp([frame_count - 1])
    duration_s = float(timestamps[0][1])
    if duration_s > ctx.max_duration_s:
        raise VideoError(
            f"'{path}' lasts {duration_s / 3600:.1f} h, above the cap of "
            f"{ctx.max_duration_s / 3600:.1f} h. Split it or raise BEHAVIOR_AGENT_MAX_DURATION_S."
        )
    return VideoInfo(
        path=str(path),
        duration_s=duration_s,
        fps=float(reader.get_avg_fps()),
        frame_count=frame_count,
        width=int(width),
        height=int(height),
        sha256=sha256_file(path),
    )


def _probe_still(path: Path, ctx: Context) -> VideoInfo:
    """A still image as a one-frame 'video' at 0 s (stills go through the same pipeline)."""
    height, width = read_image(path, ctx).shape[:2]
    return VideoInfo(
        path=str(path),
        duration_s=0.0,
        fps=0.0,
        frame_count=1,
        width=int(width),
        height=int(height),
        sha256=sha256_file(path),
    )


def _check_frame_pixels(path: Path, width: int, height: int, ctx: Context) -> None:
    if width * height > ctx.max_frame_pixels:
        raise VideoError(
            f"'{path}' is {width}x{height}, above the cap of {ctx.max_frame_pixels:,} pixels per "
            "frame. Downscale it (`ffmpeg -i INPUT -vf scale=1920:-2 OUTPUT.mp4`) or raise "
            "BEHAVIOR_AGENT_MAX_FRAME_PIXELS."
        )


def frame_start_times(path: str | os.PathLike) -> np.ndarray:
    """Start time (s) of every frame, from the reader's presentation timestamps."""
    reader = _open_reader(_existing_file(path), max_side=_SHOT_DETECT_SIDE)
    return _start_times(reader)


def sample_indices(
    start_times_s: np.ndarray,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
) -> np.ndarray:
    """Frame indices to decode for `[start_s, end_s)`: at `fps`, or `num_frames` uniformly.

    Each target time maps to the frame on screen at that time (the last frame starting at or
    before it), so the returned frames' own timestamps are what callers report.
    """
    if (fps is None) == (num_frames is None):
        raise ValueError("give exactly one of fps or num_frames")
    if len(start_times_s) == 0:
        return np.zeros(0, dtype=np.int64)
    end_s = float(start_times_s[-1]) + 1e-6 if end_s is None else end_s
    start_s = max(0.0, start_s)
    if end_s <= start_s:
        return np.zeros(0, dtype=np.int64)
    if fps is not None:
        targets = np.arange(start_s, end_s, 1.0 / fps)
    else:
        step = (end_s - start_s) / num_frames
        targets = start_s + step * (np.arange(num_frames) + 0.5)
    indices = np.searchsorted(start_times_s, targets + 1e-6, side="right") - 1
    indices = np.clip(indices, 0, len(start_times_s) - 1)
    return np.unique(indices)


def iter_frames(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    ctx: Context,
    max_side: int | None = None,
) -> Iterator[FrameBatch]:
    """Sampled frames of `[start_s, end_s)` in batches of `ctx.decode_batch`, in time order."""
    path = _existing_file(path)
    reader = _open_reader(path, max_side=max_side or ctx.decode_max_side)
    starts = _start_times(reader)
    indices = sample_indices(starts, start_s, end_s, fps=fps, num_frames=num_frames)
    yield from _decode_in_order(reader, indices, starts, path, ctx.decode_batch)


def read_ahead(batches: Iterable[FrameBatch]) -> Iterator[FrameBatch]:
    """`batches`, with the next one decoded on a thread while the caller works on this one.

    Perception's main thread is the slower of the two busy ones (mediapipe waits on nothing
    else), so decoding beside it rather than before it takes its share off the wall time; one
    batch ahead keeps memory at two batches. A decoding error is raised here, in order.
    """
    source = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix="decode") as decoder:
        upcoming = decoder.submit(next, source, None)
        while (batch := upcoming.result()) is not None:
            upcoming = decoder.submit(next, source, None)
            yield batch


def iter_stretch(
    path: str | os.PathLike, start_s: float, end_s: float, ctx: Context
) -> Iterator[FrameBatch]:
    """The frames of the whole video's sampling grid (`ctx.sample_fps` from 0 s) whose
    timestamps fall in `[start_s, end_s)`, in batches: stretches side by side get exactly the
    frames one pass over the video gets, each once."""
    path = _existing_file(path)
    reader = _open_reader(path, max_side=ctx.decode_max_side)
    starts = _start_times(reader)
    indices = sample_indices(starts, fps=ctx.sample_fps)
    times = starts[indices]
    indices = indices[(times >= start_s) & (times < end_s)]
    yield from _decode_in_order(reader, indices, starts, path, ctx.decode_batch)


def sample_frames(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    ctx: Context,
) -> FrameBatch:
    """All sampled frames of one span in one batch, thinned uniformly to at most `max_frames`."""
    path = _existing_file(path)
    reader = _open_reader(path, max_side=ctx.decode_max_side)
    starts = _start_times(reader)
    indices = sample_indices(starts, start_s, end_s, fps=fps, num_frames=num_frames)
    if max_frames is not None and len(indices) > max_frames:
        log.info("thinning %d sampled frames to the cap of %d", len(indices), max_frames)
        keep = np.linspace(0, len(indices) - 1, max_frames).round().astype(int)
        indices = indices[np.unique(keep)]
    if len(indices) == 0:
        raise VideoError(
            f"No frames of '{path}' fall in {start_s:.2f}–{end_s} s (the video lasts "
            f"{float(starts[-1]):.2f} s). Ask about a span inside the video."
        )
    return FrameBatch(_decode(reader, indices.tolist(), path), indices, starts[indices])


def still_batch(path: str | os.PathLike, ctx: Context | None = None) -> FrameBatch:
    """A still image as a one-frame batch at 0 s (stills go through the video pipeline); with
    `ctx`, one above the pixel cap is refused before it is decoded."""
    frame = read_image(path, ctx)
    return FrameBatch(frame[None], np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float64))


def sample_span(
    path: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    fps: float,
    max_frames: int,
    ctx: Context | None = None,
) -> FrameBatch:
    """Frames of a span for one model call: at `fps`, thinned to `max_frames`.

    A span shorter than one sampling step gives its middle frame; a still gives the image.
    """
    if is_image(path):
        return still_batch(path, ctx)
    try:
        return sample_frames(path, start_s, end_s, fps=fps, max_frames=max_frames, ctx=ctx)
    except VideoError:  # no sampling time fell inside the span
        return sample_frames(path, start_s, end_s, num_frames=1, ctx=ctx)


def segment(
    path: str | os.PathLike,
    ctx: Context,
    on_frames: Callable[[FrameBatch], None] | None = None,
) -> list[Clip]:
    """Clips covering the whole video: fixed windows inside shots, so no clip straddles a cut.

    Frames are sampled once at `ctx.sample_fps`; `on_frames` receives each decoded batch, so a
    caller that also needs those frames (perception) gets them from the same single pass.
    """
    info = probe(path, ctx)
    if is_image(path):
        return [Clip(clip_id=0, start_s=0.0, end_s=0.0)]
    max_side = ctx.decode_max_side if on_frames else _SHOT_DETECT_SIDE
    cuts = ShotCuts(ctx.shot_threshold)
    for batch in iter_frames(path, fps=ctx.sample_fps, ctx=ctx, max_side=max_side):
        if on_frames is not None:
            on_frames(batch)
        cuts.add(batch)
    return windows_between_cuts(cuts.times_s, info.duration_s, ctx)


class ShotCuts:
    """Cuts between consecutive sampled frames, batch by batch (`add`): a cut is where the
    colour histogram jumps by more than `threshold`. The first and last frames' histograms
    are kept, so that a cut between two stretches perceived apart is found too."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.times_s: list[float] = []
        self.first: np.ndarray | None = None
        self.first_s: float | None = None
        self.last: np.ndarray | None = None

    def add(self, batch: FrameBatch) -> None:
        for frame, time_s in zip(batch.frames, batch.timestamps_s, strict=True):
            histogram = colour_histogram(frame)
            if self.last is None:
                self.first, self.first_s = histogram, float(time_s)
            elif histogram_distance(self.last, histogram) > self.threshold:
                self.times_s.append(float(time_s))
            self.last = histogram


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """Normalised hue-saturation histogram of a frame (robust to motion, sensitive to cuts)."""
    small = cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256])
    return histogram.ravel() / max(histogram.sum(), 1.0)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance in [0, 1] between two normalised histograms."""
    return 0.5 * float(np.abs(a - b).sum())


def windows_between_cuts(cut_times: list[float], duration_s: float, ctx: Context) -> list[Clip]:
    """Split each shot into windows of `clip_length_s` (with `clip_overlap_s`).

    A last window shorter than `min_clip_s` is merged into the window before it in the same
    shot; a shot shorter than that stays a clip of its own (it is a shot).
    """
    bounds = [0.0, *sorted(t for t in cut_times if 0.0 < t < duration_s), duration_s]
    stride = ctx.clip_length_s - ctx.clip_overlap_s
    clips: list[Clip] = []
    for shot_index, (shot_start, shot_end) in enumerate(pairwise(bounds)):
        spans: list[list[float]] = []
        start = shot_start
        while start < shot_end - 1e-6:
            spans.append([start, min(start + ctx.clip_length_s, shot_end)])
            if spans[-1][1] >= shot_end:
                break
            start += stride
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < ctx.min_clip_s:
            spans.pop()
            spans[-1][1] = shot_end
        for start_s, end_s in spans:
            clips.append(
                Clip(clip_id=len(clips), start_s=start_s, end_s=end_s, shot_index=shot_index)
            )
    return clips


# --- decord, privately ------------------------------------------------------------------


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise VideoError(f"No such file: '{path}'. Check the path (and that the drive is mounted).")
    if not path.is_file():
        raise VideoError(f"'{path}' is a folder, not a file. Give the path of one video file.")
    if path.stat().st_size == 0:
        raise VideoError(f"'{path}' is empty (0 bytes). {_FIX_HINT}")
    return path


def _open_reader(path: Path, max_side: int | None):
    import decord  # imported here so that importing this module stays cheap

    width = height = -1
    if max_side is not None:
        full = _native_size(path)
        scale = min(1.0, max_side / max(full))
        if scale < 1.0:
            width = max(2, int(round(full[0] * scale / 2)) * 2)
            height = max(2, int(round(full[1] * scale / 2)) * 2)
    decord.logging.set_level(decord.logging.QUIET)
    try:
        with native_stderr_silenced():
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height)
    except (RuntimeError, AssertionError, decord.DECORDError) as error:
        reason = (
            "it has no video frames" if isinstance(error, AssertionError) else "no video stream"
        )
        raise VideoError(f"Cannot read '{path}' as a video ({reason}). {_FIX_HINT}") from None
    if len(reader) == 0:
        raise VideoError(f"'{path}' has no video frames. {_FIX_HINT}")
    return reader


def _native_size(path: Path) -> tuple[int, int]:
    """(width, height) of the stream; decord exposes it only through a decoded frame."""
    return _native_size_cached(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _native_size_cached(path: Path, mtime_ns: int) -> tuple[int, int]:
    reader = _open_reader(path, max_side=None)
    height, width = _decode(reader, [0], path).shape[1:3]
    return int(width), int(height)


def _start_times(reader) -> np.ndarray:
    return reader.get_frame_timestamp(list(range(len(reader))))[:, 0].astype(np.float64)


def _decode_in_order(
    reader, indices: np.ndarray, starts: np.ndarray, path: Path, batch_size: int
) -> Iterator[FrameBatch]:
    """The frames at increasing `indices`, in batches of `batch_size`, read forward.

    A frame is reached by decoding the ones before it without converting them (decord's
    `skip_frames`), not by `get_batch`, which converts every frame it decodes: at 2 frames/s
    of a 720p video that is 37 instead of 45 ms of CPU per sampled frame. The frames are the
    same (checked on the shared media and the devset). A gap longer than
    `_SEEK_BEYOND_FRAMES` (a sparse sample) is sought, as is each batch's first frame.
    """
    import decord

    position = None  # the index of the frame `next()` returns
    for offset in range(0, len(indices), batch_size):
        chunk = indices[offset : offset + batch_size]
        frames = None
        for slot, index in enumerate(chunk.tolist()):
            try:
                if position is None or not 0 <= index - position <= _SEEK_BEYOND_FRAMES:
                    reader.seek_accurate(index)
                elif index > position:
                    reader.skip_frames(index - position)
                frame = reader.next().asnumpy()
            except (RuntimeError, StopIteration, decord.DECORDError) as error:
                raise _corrupt(path, index, error) from None
            position = index + 1
            if frames is None:  # filled in place: a batch of 720p frames is ~44 MB
                frames = np.empty((len(chunk), *frame.shape), dtype=frame.dtype)
            frames[slot] = frame
        _stop_decoding_ahead(reader)
        position = None  # the next batch seeks back to its first frame
        yield FrameBatch(frames, chunk, starts[chunk])


def _stop_decoding_ahead(reader) -> None:
    """Stop decord's decoder thread, which otherwise goes on decoding and converting the
    frames after the last one read into memory, without bound, while the caller works
    (dmlc/decord#197, #208): gigabytes on a long video, and a core taken from perception. A
    seek stops it; the next read seeks anyway."""
    reader.seek(0)


def _corrupt(path: Path, index, error: BaseException) -> VideoError:
    reason = str(error).splitlines()[-1][:120] if str(error) else "no frame there"
    return VideoError(
        f"'{path}' is corrupt or truncated: frame {index} cannot be decoded ({reason}). {_FIX_HINT}"
    )


def _decode(reader, indices: list[int], path: Path) -> np.ndarray:
    import decord

    try:
        frames = reader.get_batch(indices).asnumpy()
        _stop_decoding_ahead(reader)
        return frames
    except (RuntimeError, decord.DECORDError) as error:
        raise _corrupt(path, indices[0] if indices else "?", error) from None
