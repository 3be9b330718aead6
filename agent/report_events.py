"""Turns raw detections into report events: merging, totals per label, notable moments."""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

from agent.report_model import KINDS, LabelTotal, NotableMoment, ReportEvent
from agent.state import Detection

# Cue strings kept per event; more only repeat what the first ones say.
MAX_CUES = 5
# Emotion labels that are the absence of an expression, never a "strong" onset.
NEUTRAL_LABELS = {"neutral", "no_expression", "none"}
_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}


def merge_detections(
    detections: Iterable[Detection],
    duration_s: float,
    gap_s: float,
    name_of: Callable[[str], str] = lambda label: label.replace("_", " "),
    kb_id_of: Callable[[str], str] = lambda label: label,
) -> list[ReportEvent]:
    """Events in time order: detections of one kind, label and person merged across short gaps.

    Times are clamped to the video (the system cites only times inside it); a detection that
    lies wholly outside the video is dropped.
    """
    groups: dict[tuple, list[Detection]] = defaultdict(list)
    for detection in detections:
        clamped = _clamped(detection, duration_s)
        if clamped is not None:
            groups[(clamped.kind, clamped.label, clamped.person_id)].append(clamped)
    events: list[ReportEvent] = []
    for (_, label, _), group in groups.items():
        for run in _runs(sorted(group, key=lambda d: (d.start_s, d.end_s)), gap_s):
            events.append(_event(run, name_of(label), kb_id_of(label)))
    events.sort(key=lambda e: (e.start_s, _KIND_ORDER.get(e.kind, 9), e.label, e.end_s))
    for number, event in enumerate(events, start=1):
        event.event_id = f"e{number:03d}"
    return events


def _clamped(detection: Detection, duration_s: float) -> Detection | None:
    if duration_s <= 0:  # a still image: every detection sits at time 0
        return detection.model_copy(update={"start_s": 0.0, "end_s": 0.0})
    start_s = min(max(detection.start_s, 0.0), duration_s)
    end_s = min(max(detection.end_s, start_s), duration_s)
    if detection.start_s >= duration_s or detection.end_s < 0:
        return None
    return detection.model_copy(update={"start_s": start_s, "end_s": end_s})


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


def _event(run: list[Detection], name: str, kb_id: str) -> ReportEvent:
    start_s = min(d.start_s for d in run)
    end_s = max(d.end_s for d in run)
    # Weight by duration so that one long confident stretch outweighs a blip; a floor keeps
    # instantaneous detections (stills, single frames) from weighing nothing.
    weights = [max(d.end_s - d.start_s, 1e-3) for d in run]
    confidence = sum(w * d.confidence for w, d in zip(weights, run, strict=True)) / sum(weights)
    best = max(run, key=lambda d: (d.confidence, d.bbox is not None))
    with_box = [d for d in run if d.bbox is not None]
    bbox = max(with_box, key=lambda d: d.confidence).bbox if with_box else None
    sources = sorted({d.source for d in run})
    return ReportEvent(
        event_id="",
        kind=run[0].kind,
        label=run[0].label,
        name=name,
        start_s=round(start_s, 3),
        end_s=round(end_s, 3),
        duration_s=round(end_s - start_s, 3),
        confidence=round(confidence, 3),
        peak_confidence=round(best.confidence, 3),
        cues=_distinct_cues(run),
        source="+".join(sources),
        person_id=run[0].person_id,
        bbox=bbox,
        detections=len(run),
        kb_id=kb_id,
        key_frame_s=round((best.start_s + best.end_s) / 2, 3),
    )


def _distinct_cues(run: list[Detection]) -> list[str]:
    cues: list[str] = []
    for detection in sorted(run, key=lambda d: -d.confidence):
        text = detection.cues.strip()
        if text and text not in cues:
            cues.append(text)
    return cues[:MAX_CUES]


def label_totals(events: list[ReportEvent], duration_s: float) -> list[LabelTotal]:
    """Count, mean duration and time share of each label; kinds in order, biggest first."""
    by_label: dict[tuple[str, str], list[ReportEvent]] = defaultdict(list)
    for event in events:
        by_label[(event.kind, event.label)].append(event)
    totals = []
    for (kind, label), group in by_label.items():
        # The union of intervals: two people smiling at once is not twice the time.
        covered_s = _union_length([(e.start_s, e.end_s) for e in group])
        totals.append(
            LabelTotal(
                kind=kind,
                label=label,
                name=group[0].name,
                count=len(group),
                total_s=round(covered_s, 3),
                mean_duration_s=round(sum(e.duration_s for e in group) / len(group), 3),
                share=round(covered_s / duration_s, 4) if duration_s > 0 else None,
            )
        )
    # Emotions rank by time (a state), gestures and actions by count (occurrences).
    totals.sort(
        key=lambda t: (
            _KIND_ORDER.get(t.kind, 9),
            -(t.total_s if t.kind == "emotion" else t.count),
            t.label,
        )
    )
    return totals


def _union_length(spans: list[tuple[float, float]]) -> float:
    total = 0.0
    current_start, current_end = None, None
    for start, end in sorted(spans):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def notable_moments(events: list[ReportEvent], strong_confidence: float) -> list[NotableMoment]:
    """Onsets of strong (non-neutral) emotions and occurrences of rare gestures, in time order.

    A gesture is rare when its label makes up at most a tenth of the gesture occurrences; so
    a recording needs ten or more gestures before any is rare (among six different gestures,
    each seen once, none stands out). Marks each event's `notable` too.
    """
    gestures = [e for e in events if e.kind == "gesture"]
    counts: dict[str, int] = defaultdict(int)
    for event in gestures:
        counts[event.label] += 1
    moments = []
    for event in events:
        if (
            event.kind == "emotion"
            and event.label.lower() not in NEUTRAL_LABELS
            and event.peak_confidence >= strong_confidence
        ):
            peak = f"peak {event.peak_confidence:.2f}"
            text = f"onset of a strong {event.name.lower()} expression ({peak})"
            moments.append(_moment(event, "strong_emotion_onset", text))
        elif event.kind == "gesture" and counts[event.label] * 10 <= len(gestures):
            text = _rarity_text(event.name.lower(), counts[event.label], len(gestures))
            moments.append(_moment(event, "rare_gesture", text))
    return moments


def _rarity_text(name: str, count: int, total: int) -> str:
    if count == 1:
        return f"the only {name} among {total} gestures"
    return f"rare: {count} {name} among {total} gestures"


def _moment(event: ReportEvent, reason: str, text: str) -> NotableMoment:
    event.notable.append(text)
    return NotableMoment(
        event_id=event.event_id,
        time_s=event.start_s,
        kind=event.kind,
        label=event.label,
        reason=reason,
        text=text,
    )


def timelines(events: list[ReportEvent]) -> dict[str, list[str]]:
    """Event ids per kind (every kind present, possibly empty), in time order."""
    rows: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for event in events:
        rows.setdefault(event.kind, []).append(event.event_id)
    return rows
