"""The one way to run perception over frames: a session fed batch by batch, with progress.

Indexing, the agent's closer look at an onset, evaluation and the `perceive` command all run
perception through `PerceptionRun` (push: `add(batch)` as frames are decoded, e.g. by
`segment(..., on_frames=run.add)`), `run_perception` (an iterable of batches) or `perceive_path`
(a file). Detections come back clamped to the video, in time order.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agent.context import Context
from agent.events import clamp_detections
from agent.state import Detection, ObjectSighting, VideoInfo
from agent.timefmt import format_clock
from agent.video import FrameBatch, is_image, iter_frames, probe, read_ahead, still_batch

Progress = Callable[[dict[str, Any]], None]


class PerceptionRun:
    """One perception pass: `add(batch)` for each batch of sampled frames, then `finish()`.

    `session_factory(perceiver, kb, ctx[, still=True])` makes the session (the real
    `PerceptionSession` by default; tests pass doubles). `duration_s` (None = unknown) bounds
    the detections' times; `total_frames` (default: duration x ctx.sample_fps) sizes progress,
    reported as `{"stage": "perceive", "done", "total", "elapsed_s", "message"}` per batch.
    """

    def __init__(
        self,
        perceiver: Any,
        kb: Any,
        ctx: Context,
        *,
        still: bool = False,
        duration_s: float | None = None,
        total_frames: int | None = None,
        progress: Progress | None = None,
        session_factory: Callable[..., Any] | None = None,
    ) -> None:
        if session_factory is None:
            from agent.perception.session import PerceptionSession as session_factory
        if still:
            self.session = session_factory(perceiver, kb, ctx, still=True)
        else:
            self.session = session_factory(perceiver, kb, ctx)
        self.still = still
        self.duration_s = 0.0 if still else duration_s
        if total_frames is None:
            known = still or duration_s is None
            total_frames = 1 if known else math.ceil(duration_s * ctx.sample_fps)
        self.total_frames = max(1, total_frames)
        self.frames_seen = 0
        # The objects seen (agent.perception.sightings), filled in by `finish`.
        self.objects: list[ObjectSighting] = []
        self.progress = progress
        self._started = time.perf_counter()

    def add(self, batch: FrameBatch) -> None:
        """Perceive a batch of frames (their reader timestamps become the detections' times)."""
        self.session.add(batch)
        self.frames_seen += len(batch)
        if self.progress is not None:
            self.progress(
                {
                    "stage": "perceive",
                    "done": min(self.frames_seen, self.total_frames),
                    "total": self.total_frames,
                    "elapsed_s": round(time.perf_counter() - self._started, 3),
                    "message": self._where(batch),
                }
            )

    def _where(self, batch: FrameBatch) -> str:
        if self.still:
            return "image perceived"
        if self.duration_s is None or not len(batch):
            return f"perceived {self.frames_seen} frames"
        at_s = float(batch.timestamps_s[-1])
        return f"{format_clock(at_s)} of {format_clock(self.duration_s)}"

    def finish(self) -> list[Detection]:
        """The detections of everything added, clamped to the video when its length is known;
        the objects seen are in `objects` after this call."""
        detections = self.session.finish()
        # A session without an object detector (a test double, say) has no sightings to give.
        sightings = getattr(self.session, "object_sightings", None)
        self.objects = sightings() if sightings is not None else []
        if self.duration_s is not None:
            inside = [s for s in self.objects if s.start_s <= self.duration_s]
            self.objects = [_clamped(s, self.duration_s) for s in inside]
        if self.duration_s is None:
            return sorted(detections, key=lambda d: (d.start_s, d.end_s, d.label))
        return clamp_detections(detections, self.duration_s)


def _clamped(sighting: ObjectSighting, duration_s: float) -> ObjectSighting:
    def inside(t: float) -> float:
        return min(max(t, 0.0), duration_s)

    return sighting.model_copy(
        update={
            "start_s": inside(sighting.start_s),
            "end_s": inside(sighting.end_s),
            "best_s": inside(sighting.best_s),
        }
    )


def run_perception(
    batches: Iterable[FrameBatch], perceiver: Any, kb: Any, ctx: Context, **options: Any
) -> list[Detection]:
    """Detections of a sequence of frame batches (`options` as for `PerceptionRun`)."""
    run = PerceptionRun(perceiver, kb, ctx, **options)
    for batch in batches:
        run.add(batch)
    return run.finish()


@contextmanager
def perceiver_for(perceiver: Any, ctx: Context) -> Iterator[Any]:
    """The given perceiver, or one made for this block and closed after it (mediapipe graphs
    hold memory, so whoever makes one closes it)."""
    if perceiver is not None:
        yield perceiver
        return
    from agent.perception.landmarks import Perceiver

    with Perceiver(ctx) as own:
        yield own


def perceive_path(
    path: str | os.PathLike,
    ctx: Context,
    kb: Any = None,
    perceiver: Any = None,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    fps: float | None = None,
    progress: Progress | None = None,
    session_factory: Callable[..., Any] | None = None,
    info: VideoInfo | None = None,
) -> list[Detection]:
    """Detections of a still image, or of a video (or the span `start_s`..`end_s` of it)
    sampled at `fps` (default `ctx.sample_fps`). `info` is the video's probe when the caller
    has it; otherwise unreadable or over-cap videos fail in `probe` here, with the reason."""
    options = {"progress": progress, "session_factory": session_factory}
    with perceiver_for(perceiver, ctx) as active:
        if is_image(path):
            return run_perception([still_batch(path, ctx)], active, kb, ctx, still=True, **options)
        info = info or probe(path, ctx)
        run_ctx = ctx.replace(sample_fps=fps)
        span_end_s = info.duration_s if end_s is None else min(end_s, info.duration_s)
        if start_s > 0.0 or span_end_s < info.duration_s:
            options["session_factory"] = _part_of(session_factory)
        return run_perception(
            read_ahead(iter_frames(path, start_s, end_s, fps=run_ctx.sample_fps, ctx=run_ctx)),
            active,
            kb,
            run_ctx,
            duration_s=round(info.duration_s, 3),
            total_frames=math.ceil(max(0.0, span_end_s - start_s) * run_ctx.sample_fps),
            **options,
        )


def _part_of(session_factory: Callable[..., Any] | None) -> Callable[..., Any]:
    """A session factory whose sessions know they see a span of a video, not all of it."""
    if session_factory is None:
        from agent.perception.session import PerceptionSession as session_factory

    def make(*args, **options):
        session = session_factory(*args, **options)
        session.whole_footage = False
        return session

    return make


def perceive_video(
    path: str | os.PathLike,
    ctx: Context,
    kb: Any = None,
    progress: Progress | None = None,
    perceiver: Any = None,
) -> list[Detection]:
    """Detections in a video, sampled at `ctx.sample_fps` (decoded once, batch by batch)."""
    return perceive_path(path, ctx, kb, perceiver, progress=progress)


def perceive_image(
    path: str | os.PathLike | np.ndarray,
    ctx: Context,
    kb: Any = None,
    perceiver: Any = None,
) -> list[Detection]:
    """Detections in a still image file (read with Pillow) or RGB array; start_s = end_s = 0."""
    if not isinstance(path, np.ndarray):
        return perceive_path(Path(path), ctx, kb, perceiver)
    batch = FrameBatch(path[None], np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float64))
    with perceiver_for(perceiver, ctx) as active:
        return run_perception([batch], active, kb, ctx, still=True)
