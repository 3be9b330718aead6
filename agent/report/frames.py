"""Key frames for report events: the frame at the event's best moment with its overlay drawn."""

import io
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.report.model import ReportEvent
from agent.video import is_image, read_image, sample_frames

log = logging.getLogger(__name__)

# Long side of a key frame in the report: enough to see a hand shape, small enough to embed.
KEY_FRAME_SIDE = 640
_JPEG_QUALITY = 82


class KeyFrameRenderer:
    """Renders key frames of one video, sharing one mediapipe perceiver across frames.

    Perception's `render_overlay` (landmarks and boxes) is used when it is available;
    otherwise the plain frame is decoded. Either way the event's own box and label are drawn
    on top in the event's colour. Use as a context manager (it closes the perceiver).
    """

    def __init__(self, video: Path, ctx: Context) -> None:
        self.video = Path(video)
        self.ctx = ctx
        self._overlay = _overlay_function()
        self._perceiver = None

    def __enter__(self) -> "KeyFrameRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._perceiver is not None:
            self._perceiver.close()
            self._perceiver = None

    def jpeg(self, event: ReportEvent, color_hex: str) -> bytes:
        """JPEG bytes of the event's key frame, its box and label drawn on it."""
        frame = self._overlay_frame(event.key_frame_s)
        if frame is None:
            frame = _plain_frame(self.video, event.key_frame_s, self.ctx)
        frame = draw_event_box(_fit(frame, KEY_FRAME_SIDE), event, color_hex)
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=_JPEG_QUALITY)
        return buffer.getvalue()

    def _overlay_frame(self, time_s: float) -> np.ndarray | None:
        if self._overlay is None:
            return None
        render_overlay, perceiver_class = self._overlay
        if self._perceiver is None:
            self._perceiver = perceiver_class(self.ctx)
        try:
            frame = render_overlay(self.video, time_s, self.ctx, perceiver=self._perceiver)
        except BehaviorAgentError:
            raise
        except Exception as error:  # a failing overlay must not cost the user the report
            log.warning("overlay at %.2f s failed (%s); using the plain frame", time_s, error)
            return None
        return np.ascontiguousarray(frame)


def key_frame_jpeg(video: Path, event: ReportEvent, ctx: Context, color_hex: str) -> bytes:
    """One key frame (see `KeyFrameRenderer`; use that for several frames of a video)."""
    with KeyFrameRenderer(video, ctx) as renderer:
        return renderer.jpeg(event, color_hex)


def _overlay_function():
    """(render_overlay, Perceiver) from perception, or None where it is not available."""
    try:
        from agent.perception import Perceiver, render_overlay
    except ImportError:
        return None
    return render_overlay, Perceiver


def _plain_frame(video: Path, time_s: float, ctx: Context) -> np.ndarray:
    if is_image(video):
        return read_image(video)
    return sample_frames(video, time_s, time_s + 1e-3, num_frames=1, ctx=ctx).frames[0]


def _fit(frame: np.ndarray, max_side: int) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(frame)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def draw_event_box(frame: np.ndarray, event: ReportEvent, color_hex: str) -> np.ndarray:
    """The event's normalised bbox and label drawn in its colour (a copy; RGB in, RGB out)."""
    if event.bbox is None:
        return frame
    frame = frame.copy()
    height, width = frame.shape[:2]
    x, y, w, h = event.bbox
    top_left = (int(x * width), int(y * height))
    bottom_right = (int((x + w) * width), int((y + h) * height))
    color = tuple(int(color_hex.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    thickness = max(2, round(max(height, width) / 320))
    # A dark outline under the coloured box keeps it visible on a background of its colour.
    cv2.rectangle(frame, top_left, bottom_right, (20, 20, 20), thickness + 2)
    cv2.rectangle(frame, top_left, bottom_right, color, thickness)
    text = f"{event.label} {event.confidence:.2f}"
    scale = max(0.45, max(height, width) / 1200)
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    text_x = min(max(top_left[0], 0), max(0, width - text_w - 4))
    text_y = max(top_left[1], text_h + baseline + 4)
    cv2.rectangle(
        frame, (text_x, text_y - text_h - baseline - 4), (text_x + text_w + 4, text_y), color, -1
    )
    cv2.putText(
        frame,
        text,
        (text_x + 2, text_y - baseline - 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return frame
