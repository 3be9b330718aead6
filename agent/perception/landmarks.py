"""Perceiver: mediapipe 0.10.14 holistic (pose, hands, face mesh with iris) per frame, offline.

Only the legacy solutions are used, and only the models that ship inside the wheel (pose model
complexity 1): nothing is downloaded. Close-up hands with no body in view defeat holistic (its
hands are cropped around the pose's wrists), so the stand-alone hands solution fills in there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.quiet import native_stderr_silenced

log = logging.getLogger(__name__)

# Pose model complexity 1 ("full") is the only pose model bundled in mediapipe 0.10.14; 0 and 2
# would be downloaded on first use, which must never happen here.
_POSE_COMPLEXITY = 1
# Stills with a long side from this many pixels get a windowed hand search (see
# `_hands_in_tiles`) when the whole image shows no hand.
_TILE_ABOVE = 1600


@dataclass
class Hand:
    """21 hand landmarks (x, y normalised to the frame, z relative depth) and which hand."""

    points: np.ndarray
    side: str  # "left" | "right" | "unknown" (the person's own side when holistic knows it)

    @property
    def box(self) -> list[float]:
        return points_box(self.points)


@dataclass
class Person:
    """Landmarks of one person in one frame; any part may be missing (None)."""

    person_id: int = 0
    pose: np.ndarray | None = None  # (33, 4): x, y, z, visibility
    face: np.ndarray | None = None  # (478, 3) with iris points (refined face mesh)
    hands: list[Hand] = field(default_factory=list)

    @property
    def face_box(self) -> list[float] | None:
        return None if self.face is None else points_box(self.face)

    @property
    def box(self) -> list[float] | None:
        """Box around everything seen of this person (visible pose points, face, hands)."""
        parts = []
        if self.pose is not None:
            visible = self.pose[self.pose[:, 3] > 0.5, :2]
            if len(visible):
                parts.append(visible)
        if self.face is not None:
            parts.append(self.face[:, :2])
        parts.extend(hand.points[:, :2] for hand in self.hands)
        return points_box(np.concatenate(parts)) if parts else None


@dataclass
class FrameLandmarks:
    """What the Perceiver found in one frame: people (landmarks) and the frame's size."""

    time_s: float
    width: int
    height: int
    persons: list[Person] = field(default_factory=list)

    @property
    def aspect(self) -> float:
        """width / height: x and y are normalised separately, geometry needs them comparable."""
        return self.width / max(1, self.height)


def points_box(points: np.ndarray) -> list[float]:
    """Normalised [x, y, w, h] around points, clipped to the frame."""
    xy = np.clip(points[:, :2], 0.0, 1.0)
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return [
        round(float(x0), 4),
        round(float(y0), 4),
        round(float(x1 - x0), 4),
        round(float(y1 - y0), 4),
    ]


class Perceiver:
    """Runs mediapipe on RGB frames. Heavy (graphs load on first use): make one and inject it.

    `process(frame)` treats consecutive calls as one video (tracking between frames);
    `reset()` starts a new video; `process(frame, still=True)` treats a frame on its own.
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._video = None
        self._still = None
        self._hands_video = None
        self._hands_still = None
        # Frames to skip before the next look for bodiless hands in a video (see `process`).
        self._hands_backoff = 0
        self._hands_wait = 0
        # Graphs (by id) that have run once; see `_run`.
        self._started: set[int] = set()
        self._learned = None

    @property
    def learned(self):
        """The installed learned models (expression classifier, object detector), loaded on
        first use; see `agent.perception.learned`."""
        if self._learned is None:
            from agent.perception.learned import load_learned_models

            self._learned = load_learned_models(self.ctx)
        return self._learned

    # --- public --------------------------------------------------------------------------

    def process(self, frame_rgb: np.ndarray, time_s: float = 0.0, *, still: bool = False):
        """Landmarks of the person in one RGB uint8 frame (H, W, 3)."""
        frame_rgb = np.ascontiguousarray(frame_rgb)
        height, width = frame_rgb.shape[:2]
        result = self._run(self._holistic(still), frame_rgb)
        person = Person(
            pose=_array(result.pose_landmarks, with_visibility=True),
            face=_array(result.face_landmarks),
            hands=[
                Hand(points, side)
                for points, side in (
                    (_array(result.left_hand_landmarks), "left"),
                    (_array(result.right_hand_landmarks), "right"),
                )
                if points is not None
            ],
        )
        # Holistic finds hands only through the pose; where it gave none (no body in view,
        # a close-up hand read as a body, a hand held toward the camera), the palm detector of
        # the hands solution looks directly (in video, less often after each miss).
        if not person.hands and self._look_for_hands(still):
            person.hands = self._hands_only(frame_rgb, still)
            if still:
                person.hands = _distinct(person.hands + self._hands_in_tiles(frame_rgb))
            if not still:
                # In a video with nobody in view, look again soon after a find, rarely after
                # misses (1, 2, 4 ... 32 frames): the palm detector costs a holistic pass.
                self._hands_backoff = (
                    0 if person.hands else min(32, max(1, 2 * self._hands_backoff))
                )
                self._hands_wait = self._hands_backoff
        persons = [person] if (person.box is not None) else []
        return FrameLandmarks(float(time_s), width, height, persons)

    def _look_for_hands(self, still: bool) -> bool:
        if still or self._hands_wait <= 0:
            return True
        self._hands_wait -= 1
        return False

    def reset(self) -> None:
        """Forget tracking state: the next frame starts a new video."""
        self._hands_backoff = self._hands_wait = 0
        closed = False
        for name in ("_video", "_hands_video"):
            graph = getattr(self, name)
            if graph is not None:
                graph.close()
                setattr(self, name, None)
                closed = True
        if closed:
            _return_freed_memory()

    def close(self) -> None:
        self.reset()
        for name in ("_still", "_hands_still"):
            graph = getattr(self, name)
            if graph is not None:
                graph.close()
                setattr(self, name, None)

    def __enter__(self) -> Perceiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- private -------------------------------------------------------------------------

    def _run(self, graph, frame_rgb: np.ndarray):
        # A graph's first run loads its TFLite models, which log start-up chatter to fd 2.
        if id(graph) in self._started:
            return graph.process(frame_rgb)
        with native_stderr_silenced():
            result = graph.process(frame_rgb)
        self._started.add(id(graph))
        return result

    def _holistic(self, still: bool):
        name = "_still" if still else "_video"
        if getattr(self, name) is None:
            holistic = _solutions().holistic
            setattr(
                self,
                name,
                holistic.Holistic(
                    static_image_mode=still,
                    model_complexity=_POSE_COMPLEXITY,
                    refine_face_landmarks=True,
                    min_detection_confidence=0.5,
                    min_tracking_confidence=0.5,
                ),
            )
        return getattr(self, name)

    def _hands_only(self, frame_rgb: np.ndarray, still: bool) -> list[Hand]:
        name = "_hands_still" if still else "_hands_video"
        if getattr(self, name) is None:
            hands = _solutions().hands
            setattr(
                self,
                name,
                hands.Hands(
                    static_image_mode=still,
                    max_num_hands=2,
                    model_complexity=1,
                    min_detection_confidence=0.5,
                ),
            )
        result = self._run(getattr(self, name), frame_rgb)
        if not result.multi_hand_landmarks:
            return []
        # The hands solution labels handedness as if the image were mirrored (selfie view);
        # without knowing the camera we do not claim a side.
        return [Hand(_array(landmarks), "unknown") for landmarks in result.multi_hand_landmarks]

    def _hands_in_tiles(self, frame_rgb: np.ndarray) -> list[Hand]:
        """Hands in a large still, looked for window by window (2 x 2, then 3 x 3).

        The palm detector sees the whole image at 192 px: in a 12-megapixel photo a hand of a
        tenth of the width is a few pixels there. Windows give it the hand at a usable size.
        """
        height, width = frame_rgb.shape[:2]
        if max(height, width) < _TILE_ABOVE:
            return []
        hands = []
        # Both grids: a hand cut by the 2 x 2 seams lies whole in a 3 x 3 window, and the
        # larger, complete detection wins in `_distinct`.
        for grid in (2, 3):
            for x0, y0, x1, y1 in tiles(width, height, grid):
                found = self._hands_only(np.ascontiguousarray(frame_rgb[y0:y1, x0:x1]), True)
                scale = np.array([(x1 - x0) / width, (y1 - y0) / height, 1.0], np.float32)
                offset = np.array([x0 / width, y0 / height, 0.0], np.float32)
                hands += [Hand(h.points * scale + offset, h.side) for h in found]
        return hands


def _distinct(hands: list[Hand]) -> list[Hand]:
    """One hand per place: of overlapping detections the largest (a partial hand found in
    the whole image is a fragment of the one found in a window), at most two."""
    kept: list[Hand] = []
    for hand in sorted(hands, key=lambda h: -h.box[2] * h.box[3]):
        if all(_overlap_share(hand.box, other.box) < 0.3 for other in kept):
            kept.append(hand)
    return kept[:2]


def _overlap_share(a: list[float], b: list[float]) -> float:
    """Intersection over the smaller box's area."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / max(min(a[2] * a[3], b[2] * b[3]), 1e-9)


def tiles(width: int, height: int, grid: int, overlap: float = 0.25) -> list[tuple[int, ...]]:
    """(x0, y0, x1, y1) pixel windows of a grid x grid split, each grown by `overlap` of a cell
    so that a hand on a seam lies whole in some window."""
    out = []
    cell_w, cell_h = width / grid, height / grid
    pad_w, pad_h = cell_w * overlap, cell_h * overlap
    for row in range(grid):
        for col in range(grid):
            x0, y0 = max(0, int(col * cell_w - pad_w)), max(0, int(row * cell_h - pad_h))
            x1 = min(width, int((col + 1) * cell_w + pad_w))
            y1 = min(height, int((row + 1) * cell_h + pad_h))
            out.append((x0, y0, x1, y1))
    return out


def _array(landmarks, with_visibility: bool = False) -> np.ndarray | None:
    if landmarks is None:
        return None
    if with_visibility:
        rows = [(p.x, p.y, p.z, p.visibility) for p in landmarks.landmark]
    else:
        rows = [(p.x, p.y, p.z) for p in landmarks.landmark]
    return np.asarray(rows, dtype=np.float32)


def _return_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc only; elsewhere nothing to do).

    A closed graph frees its hundreds of megabytes in many small blocks, which glibc keeps
    mapped; without this each stretch of a long video (a new graph each) grew RSS by ~30 MB.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _solutions():
    # glog/absl chatter from the C++ graph is noise for users; keep it to errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    # mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated on every run.
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
    try:
        import mediapipe as mp
    except ImportError as error:
        raise BehaviorAgentError(
            f"mediapipe is not importable ({error}). Install it: `pip install mediapipe==0.10.14`"
            " (the last release whose models ship inside the wheel)."
        ) from None
    return mp.solutions
