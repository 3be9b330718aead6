"""What one retrieval pass keeps: the asked labels, the window an anchor sets, the detections
of the person the question singles out, and plain dicts of records and search hits."""

from typing import Any

from agent.events import label_key, spans_overlap
from agent.loop import answering as say
from agent.planning import Plan


def as_dict(record: Any) -> dict[str, Any]:
    """A record (pydantic model or mapping) as a plain dict."""
    return record.model_dump() if hasattr(record, "model_dump") else dict(record)


def hit_dict(hit: Any) -> dict[str, Any]:
    """The plain part of a search hit (detections are re-read from the index by label), with
    the span of the evidence inside its clip."""
    span_start_s = getattr(hit, "span_start_s", None)
    span_end_s = getattr(hit, "span_end_s", None)
    return {
        "clip_id": int(hit.clip_id),
        "start_s": float(hit.start_s),
        "end_s": float(hit.end_s),
        "span_start_s": float(hit.start_s if span_start_s is None else span_start_s),
        "span_end_s": float(hit.end_s if span_end_s is None else span_end_s),
        "label": getattr(hit, "label", None),
        "score": float(hit.score),
        "caption": str(getattr(hit, "caption", "") or ""),
    }


def overlaps(item: dict[str, Any], window: dict[str, float]) -> bool:
    """Spans must share time (one that ends where "after that" starts is not after it);
    stills and instants count inside the window, ends included."""
    return spans_overlap(item["start_s"], item["end_s"], window["start_s"], window["end_s"])


def wanted_labels(the_plan: Plan, kb: Any, unchecked: set[str]) -> set[str]:
    """The checkable target ids; else every class of the asked kinds; empty = any label.

    Only the asked classes count: a re-query with synonyms changes the search text, never the
    classes accepted as the answer (another class is another answer to another question).
    """
    labels = {t for t in the_plan.targets if t not in unchecked}
    if not the_plan.targets and the_plan.kinds:
        labels = {i for kind in the_plan.kinds for i in kb.ids(kind)}
    return {label_key(label) for label in labels}


def anchor_window(
    the_plan: Plan, window: dict[str, float], detections: list[dict], kb: Any, video: dict
) -> tuple[dict[str, float], str]:
    """Resolve "after she sits down" into a window from the anchor's first detection."""
    anchor = the_plan.anchor
    assert anchor is not None
    found = [d for d in detections if anchor.target and label_key(d["label"]) == anchor.target]
    if not found:
        what = say.class_name(kb, anchor.target) if anchor.target else f"'{anchor.text}'"
        return window, f"I could not find when {what} happens, so I searched the whole video."
    first = min(found, key=lambda d: d["start_s"])
    if anchor.relation == "after":
        return {**window, "start_s": max(window["start_s"], first["end_s"])}, ""
    return {**window, "end_s": min(window["end_s"], first["start_s"])}, ""


def only_subject(detections: list[dict], the_plan: Plan) -> tuple[list[dict], str]:
    """Keep the detections of the person the question singles out, by horizontal position."""
    subject = the_plan.subject
    if subject is None or subject.side is None:
        return detections, ""
    placed = [d for d in detections if d.get("bbox")]
    if not placed:
        return detections, (
            f"Perception has no per-person positions here, so I could not single out "
            f"{subject.text}; the answer covers everyone."
        )
    by_person: dict[Any, list[float]] = {}
    for det in placed:
        x, _, w, _ = det["bbox"]
        by_person.setdefault(det.get("person_id"), []).append(x + w / 2)
    if len(by_person) < 2:
        centre = sum(by_person[next(iter(by_person))]) / len(by_person[next(iter(by_person))])
        keep = {"left": centre < 0.5, "right": centre >= 0.5, "center": 0.3 <= centre <= 0.7}
        return (placed if keep[subject.side] else []), ""
    centres = sorted(by_person, key=lambda p: sum(by_person[p]) / len(by_person[p]))
    chosen = {"left": centres[0], "right": centres[-1], "center": centres[len(centres) // 2]}
    person = chosen[subject.side]
    return [d for d in placed if d.get("person_id") == person], ""
