"""Turns raw detections into report events: merging, totals per label, notable moments."""

from collections import defaultdict
from collections.abc import Callable, Iterable

from agent.context import Context
from agent.events import KIND_ORDER, Event, covered_s, merge_detections
from agent.report.model import KINDS, LabelTotal, NotableMoment, ReportEvent
from agent.state import Detection

# Emotion labels that are the absence of an expression, never a "strong" onset.
NEUTRAL_LABELS = {"neutral", "no_expression", "none"}


def report_events(
    detections: Iterable[Detection],
    duration_s: float,
    ctx: Context,
    name_of: Callable[[str], str] = lambda label: label.replace("_", " "),
    kb_id_of: Callable[[str], str] = lambda label: label,
) -> list[ReportEvent]:
    """The video's events (`agent.events.merge_detections`, the rule answers and evaluation
    use too) as report events, numbered e001, e002, ... in time order."""
    events = merge_detections(detections, duration_s, ctx)
    return [
        _report_event(number, event, name_of(event.label), kb_id_of(event.label))
        for number, event in enumerate(events, start=1)
    ]


def _report_event(number: int, event: Event, name: str, kb_id: str) -> ReportEvent:
    return ReportEvent(
        event_id=f"e{number:03d}",
        kind=event.kind,
        label=event.label,
        name=name,
        start_s=event.start_s,
        end_s=event.end_s,
        duration_s=round(event.duration_s, 3),
        confidence=event.confidence,
        peak_confidence=event.peak_confidence,
        cues=event.cues,
        source="+".join(event.sources),
        person_id=event.person_id,
        bbox=event.bbox,
        detections=event.detections,
        kb_id=kb_id,
        key_frame_s=event.key_time_s,
    )


def label_totals(events: list[ReportEvent], duration_s: float) -> list[LabelTotal]:
    """Count, mean duration and time share of each label; kinds in order, biggest first."""
    by_label: dict[tuple[str, str], list[ReportEvent]] = defaultdict(list)
    for event in events:
        by_label[(event.kind, event.label)].append(event)
    totals = []
    for (kind, label), group in by_label.items():
        # The union of intervals: two people smiling at once is not twice the time.
        covered = covered_s([(e.start_s, e.end_s) for e in group])
        totals.append(
            LabelTotal(
                kind=kind,
                label=label,
                name=group[0].name,
                count=len(group),
                total_s=round(covered, 3),
                mean_duration_s=round(sum(e.duration_s for e in group) / len(group), 3),
                share=round(covered / duration_s, 4) if duration_s > 0 else None,
            )
        )
    # Emotions rank by time (a state), gestures and actions by count (occurrences).
    totals.sort(
        key=lambda t: (
            KIND_ORDER.get(t.kind, 9),
            -(t.total_s if t.kind == "emotion" else t.count),
            t.label,
        )
    )
    return totals


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
