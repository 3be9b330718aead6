"""A long video in stretches: plan them, perceive one (a pure function any worker can run), and
merge the stretches' results into the video's clips, detections and objects.

Each stretch is decoded and perceived by a session of its own, so memory is bounded by one
stretch whatever the video's length, and a finished stretch is a small JSON-ready
`StretchResult` that the driver checkpoints in the library (`agent.indexing.pipeline`). A
detection or object sighting cut by a stretch boundary is joined again by the one merge rule
of `agent.events`; a cut exactly at a boundary is found from the histograms of the frames on
both sides. Stretches start on the whole video's sampling grid, so a video no longer than one
stretch is perceived exactly as in one pass.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.context import Context
from agent.events import label_key, merge_detections
from agent.state import Clip, Detection, ObjectSighting, Record, VideoInfo
from agent.video import (
    ShotCuts,
    histogram_distance,
    iter_stretch,
    read_ahead,
    windows_between_cuts,
)

Progress = Callable[[dict[str, Any]], None]
# A last stretch shorter than this share of `stretch_s` joins the one before: a few seconds
# perceived alone would have too little context (a face's neutral baseline, say).
_SHORTEST_LAST = 0.25


class StretchResult(Record):
    """What perceiving one stretch found (JSON round-trip: a checkpoint, or a worker's reply)."""

    index: int
    start_s: float
    end_s: float
    frames: int = 0
    # Shot cuts inside the stretch, and the first frame's time and histogram and the last
    # frame's histogram (a cut between two stretches is found from them).
    cut_times_s: list[float] = []
    first_s: float | None = None
    first_histogram: list[float] = []
    last_histogram: list[float] = []
    detections: list[Detection] = []
    objects: list[ObjectSighting] = []
    wall_s: float = 0.0


def plan_stretches(info: VideoInfo, ctx: Context) -> list[tuple[float, float]]:
    """(start_s, end_s) of each stretch, covering the video; one stretch when `stretch_s` is
    0 or the video is no longer than one."""
    duration_s = float(info.duration_s)
    if ctx.stretch_s <= 0 or duration_s <= ctx.stretch_s:
        return [(0.0, duration_s)]
    starts = list(np.arange(0.0, duration_s, ctx.stretch_s))
    if len(starts) > 1 and duration_s - starts[-1] < _SHORTEST_LAST * ctx.stretch_s:
        starts.pop()
    ends = [*starts[1:], duration_s]
    return [(round(float(s), 3), round(float(e), 3)) for s, e in zip(starts, ends, strict=True)]


def plan_key(settings: dict[str, Any], plan: Sequence[tuple[float, float]]) -> str:
    """The key of a video's stretch checkpoints: its index settings and stretch plan (a
    checkpoint made with other settings or stretches is not resumed from)."""
    text = json.dumps([settings, [list(span) for span in plan]], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def perceive_stretch(
    path: str | Path,
    start_s: float,
    end_s: float,
    ctx: Context,
    *,
    index: int = 0,
    duration_s: float | None = None,
    perceiver: Any = None,
    kb: Any = None,
    session_factory: Callable[..., Any] | None = None,
    progress: Progress | None = None,
) -> StretchResult:
    """Decode and perceive the frames of `[start_s, end_s)` (a fresh perception session; a
    perceiver is made and closed here unless one is given). The last stretch should end at
    the video's `duration_s`, which also bounds the detections' times (default `end_s`)."""
    from agent.perception.runner import PerceptionRun, perceiver_for

    started = time.perf_counter()
    duration_s = end_s if duration_s is None else duration_s
    # The last stretch takes every frame to the end, even one whose start rounds past end_s.
    until_s = np.inf if end_s >= duration_s else end_s
    cuts = ShotCuts(ctx.shot_threshold)
    with perceiver_for(perceiver, ctx) as active:
        run = PerceptionRun(
            active,
            kb,
            ctx,
            duration_s=duration_s,
            total_frames=int(np.ceil(max(0.0, end_s - start_s) * ctx.sample_fps)),
            progress=progress,
            session_factory=session_factory,
        )
        for batch in read_ahead(iter_stretch(path, start_s, until_s, ctx)):
            run.add(batch)
            cuts.add(batch)
        detections = run.finish()
    return StretchResult(
        index=index,
        start_s=start_s,
        end_s=end_s,
        frames=run.frames_seen,
        cut_times_s=cuts.times_s,
        first_s=cuts.first_s,
        first_histogram=_floats(cuts.first),
        last_histogram=_floats(cuts.last),
        detections=detections,
        objects=run.objects,
        wall_s=round(time.perf_counter() - started, 3),
    )


def merge_stretches(
    results: Sequence[StretchResult], info: VideoInfo, ctx: Context
) -> tuple[list[Clip], list[Detection], list[ObjectSighting]]:
    """The video's clips, detections and objects from all its stretches' results: cuts
    joined (with those between stretches), clips cut once over the whole video, people
    numbered apart per stretch, and detections and sightings cut by a boundary joined."""
    ordered = sorted(results, key=lambda r: r.index)
    cut_times = [t for r in ordered for t in r.cut_times_s]
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.last_histogram and after.first_histogram and after.first_s is not None:
            jump = histogram_distance(
                np.asarray(before.last_histogram), np.asarray(after.first_histogram)
            )
            if jump > ctx.shot_threshold:
                cut_times.append(after.first_s)
    clips = windows_between_cuts(sorted(cut_times), info.duration_s, ctx)
    detections: list[Detection] = []
    objects: list[ObjectSighting] = []
    people_before = 0
    for result in ordered:
        found = _renumbered(result.detections, people_before)
        people_before = max([people_before, *(d.person_id or 0 for d in found)])
        detections = _joined(detections, found, info.duration_s, ctx)
        objects = _joined_sightings(objects, result.objects, 2.5 / ctx.object_fps)
    # The order of one pass's detections (`agent.events.clamp_detections`).
    detections.sort(key=lambda d: (d.start_s, d.end_s, d.label))
    objects.sort(key=lambda s: (s.start_s, s.label))
    return clips, detections, objects


def _floats(histogram: np.ndarray | None) -> list[float]:
    return [] if histogram is None else [float(v) for v in histogram]


def _renumbered(detections: list[Detection], offset: int) -> list[Detection]:
    """Each stretch numbers the people it tracks from 1; later stretches count on (person 0,
    the main person, stays 0)."""
    if offset == 0:
        return list(detections)
    return [
        d.model_copy(update={"person_id": d.person_id + offset}) if d.person_id else d
        for d in detections
    ]


def _joined(
    before: list[Detection], after: list[Detection], duration_s: float, ctx: Context
) -> list[Detection]:
    """`before` and `after` (the next stretch's), with the last detection of each kind, label
    and person before the boundary merged with the first one after it when the one merge
    rule (`agent.events.merge_detections`) makes them one event."""
    if not before or not after:
        return [*before, *after]
    last: dict[tuple, Detection] = {}
    for detection in before:
        key = _key(detection)
        if key not in last or detection.end_s > last[key].end_s:
            last[key] = detection
    first: dict[tuple, Detection] = {}
    for detection in after:
        key = _key(detection)
        if key not in first or detection.start_s < first[key].start_s:
            first[key] = detection
    every = ctx.replace(event_min_confidence=0.0)
    merged_away: set[int] = set()
    joined: list[Detection] = []
    for key, early in last.items():
        late = first.get(key)
        if late is None:
            continue
        events = merge_detections([early, late], duration_s, every)
        if len(events) == 1:
            event = events[0]
            merged_away |= {id(early), id(late)}
            joined.append(
                early.model_copy(
                    update={
                        "start_s": event.start_s,
                        "end_s": event.end_s,
                        "confidence": event.confidence,
                        "bbox": event.bbox,
                        "cues": event.cues[0] if event.cues else early.cues,
                    }
                )
            )
    kept = [d for d in [*before, *after] if id(d) not in merged_away]
    return [*kept, *joined]


def _key(detection: Detection) -> tuple:
    return (detection.kind, label_key(detection.label), detection.person_id, detection.source)


def _joined_sightings(
    before: list[ObjectSighting], after: list[ObjectSighting], gap_s: float
) -> list[ObjectSighting]:
    """Sightings of one label that a stretch boundary cut (the next one starts within `gap_s`
    of the last one's end, the rule of `agent.perception.sightings`) become one."""
    last: dict[str, ObjectSighting] = {}
    for sighting in before:
        if sighting.label not in last or sighting.end_s > last[sighting.label].end_s:
            last[sighting.label] = sighting
    out = list(before)
    for sighting in sorted(after, key=lambda s: s.start_s):
        early = last.get(sighting.label)
        if early is None or sighting.start_s - early.end_s > gap_s:
            out.append(sighting)
            continue
        best = sighting if sighting.score > early.score else early
        merged = early.model_copy(
            update={
                "end_s": max(early.end_s, sighting.end_s),
                "score": best.score,
                "bbox": best.bbox,
                "best_s": best.best_s,
                "count": max(early.count, sighting.count),
                "frames": early.frames + sighting.frames,
            }
        )
        out[out.index(early)] = merged
        last[sighting.label] = merged
    return out
