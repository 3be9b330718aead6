"""Detections become events by one rule for the agent, reports and evaluation alike.

Span overlap, label keys, clamping to the video and merging live here only, so that the same
video yields the same events whichever part of the system counts them. The merge settings
(`event_merge_gap_s`, `event_min_confidence`) are in `Context`.
"""

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import get_args

from agent.context import Context
from agent.state import Detection, Kind, Record

# Cue strings kept per event; more only repeat what the first ones say.
MAX_CUES = 5
# Events at the same time are listed emotion, gesture, action (the order of `Kind`).
KIND_ORDER = {kind: index for index, kind in enumerate(get_args(Kind))}


def label_key(label: str) -> str:
    """Labels compare case- and separator-insensitively ("Thumb up" == "thumb_up")."""
    return re.sub(r"[\s\-_]+", "_", label.strip().lower())


def spans_overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Whether two spans share time; a zero-length span (a still, an instant) counts when it
    falls inside the other span, ends included. Spans that only touch do not overlap."""
    if a_start < b_end and a_end > b_start:
        return True
    if a_start == a_end:
        return b_start <= a_start <= b_end
    return b_start == b_end and a_start <= b_start <= a_end


def shared_s(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Seconds two spans share (0.0 when they do not overlap or one is an instant)."""
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def covered_s(spans: Iterable[tuple[float, float]]) -> float:
    """Length of the union of spans: two people smiling at once is not twice the time."""
    total_s, run_start, run_end = 0.0, None, None
    for start_s, end_s in sorted(spans):
        if run_end is None or start_s > run_end:
            if run_end is not None:
                total_s += run_end - run_start
            run_start, run_end = start_s, end_s
        else:
            run_end = max(run_end, end_s)
    return total_s + (run_end - run_start if run_end is not None else 0.0)


def clamp_time(time_s: float, duration_s: float) -> float:
    """A time inside [0, duration_s], rounded to the millisecond."""
    return round(min(max(float(time_s), 0.0), float(duration_s)), 3)


def clamp_detections(detections: Iterable[Detection], duration_s: float) -> list[Detection]:
    """Detections with their times inside the video, in time order (the system owns times).

    A detection wholly outside the video is dropped; in a still image (duration 0) every
    detection sits at 0 s.
    """
    kept = []
    for detection in detections:
        if duration_s <= 0:
            kept.append(detection.model_copy(update={"start_s": 0.0, "end_s": 0.0}))
            continue
        if detection.start_s >= duration_s or detection.end_s < 0:
            continue
        start_s = clamp_time(detection.start_s, duration_s)
        end_s = max(start_s, clamp_time(detection.end_s, duration_s))
        kept.append(detection.model_copy(update={"start_s": start_s, "end_s": end_s}))
    return sorted(kept, key=lambda d: (d.start_s, d.end_s, d.label))


class Event(Record):
    """Detections of one kind, label and person merged across short gaps."""

    kind: str
    label: str
    person_id: int | None = None
    start_s: float
    end_s: float
    # Duration-weighted mean of the merged confidences, their maximum, and confidence x seconds
    # summed (how much of the behavior there is: grounding picks the strongest episode by it).
    confidence: float
    peak_confidence: float
    strength: float
    # The duration-weighted mean confidence of the perception detections alone: what was
    # measured. None when only a VLM named the behavior (its detections carry a ranking weight,
    # not a measurement), so no answer shows a number nothing measured.
    measured_confidence: float | None = None
    # Distinct cue texts, the most confident detection's first.
    cues: list[str] = []
    # The box of the most confident detection that has one.
    bbox: list[float] | None = None
    sources: list[str] = []
    detections: int = 1
    # The middle of the most confident detection: where a key frame shows the event best.
    key_time_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def merge_detections(
    detections: Iterable[Detection], duration_s: float, ctx: Context
) -> list[Event]:
    """The events of a video, in time order: the one merging rule of the system.

    Detections are clamped to the video (see `clamp_detections`); those below
    `ctx.event_min_confidence` are left out; the rest, grouped by kind, label key and person,
    merge when one starts at most `ctx.event_merge_gap_s` after the previous one ends.
    """
    groups: dict[tuple, list[Detection]] = defaultdict(list)
    for detection in clamp_detections(detections, duration_s):
        if detection.confidence >= ctx.event_min_confidence:
            key = (detection.kind, label_key(detection.label), detection.person_id)
            groups[key].append(detection)
    events = [
        _event(run)
        for group in groups.values()
        for run in _runs(sorted(group, key=lambda d: (d.start_s, d.end_s)), ctx.event_merge_gap_s)
    ]
    return sorted(events, key=lambda e: (e.start_s, KIND_ORDER.get(e.kind, 9), e.label, e.end_s))


def _runs(ordered: list[Detection], gap_s: float) -> Iterable[list[Detection]]:
    run: list[Detection] = []
    run_end_s = -math.inf
    for detection in ordered:
        if run and detection.start_s - run_end_s > gap_s:
            yield run
            run = []
        run_end_s = max(run_end_s, detection.end_s) if run else detection.end_s
        run.append(detection)
    if run:
        yield run


def _event(run: list[Detection]) -> Event:
    # Weight by duration so that one long confident stretch outweighs a blip; a floor keeps
    # instantaneous detections (stills, single frames) from weighing nothing.
    weights = [max(d.end_s - d.start_s, 1e-3) for d in run]
    strength = sum(w * d.confidence for w, d in zip(weights, run, strict=True))
    best = max(run, key=lambda d: (d.confidence, d.bbox is not None))
    with_box = [d for d in run if d.bbox is not None]
    measured = [(w, d) for w, d in zip(weights, run, strict=True) if d.source != "vlm"]
    measured_s = sum(w for w, _ in measured)
    return Event(
        kind=run[0].kind,
        label=run[0].label,
        person_id=run[0].person_id,
        start_s=round(min(d.start_s for d in run), 3),
        end_s=round(max(d.end_s for d in run), 3),
        confidence=round(strength / sum(weights), 3),
        peak_confidence=round(best.confidence, 3),
        strength=round(strength, 4),
        measured_confidence=(
            round(sum(w * d.confidence for w, d in measured) / measured_s, 3) if measured else None
        ),
        cues=_distinct_cues(run),
        bbox=max(with_box, key=lambda d: d.confidence).bbox if with_box else None,
        sources=sorted({d.source for d in run}),
        detections=len(run),
        key_time_s=round((best.start_s + best.end_s) / 2, 3),
    )


def _distinct_cues(run: list[Detection]) -> list[str]:
    cues: list[str] = []
    for detection in sorted(run, key=lambda d: -d.confidence):
        text = detection.cues.strip()
        if text and text not in cues:
            cues.append(text)
    return cues[:MAX_CUES]
