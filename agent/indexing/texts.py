"""The words of the index: captions from VLM replies, detections from the classes a VLM named,
the clip text shown with a hit (detected events with their times, then the caption), and the
texts that name one thing seen each (a class, an object), which hybrid search compares with."""

from agent.events import label_key
from agent.state import Clip, Detection, ObjectSighting
from agent.timefmt import format_clock
from agent.vlm.reply_times import without_times

_KIND_ORDER = ("gesture", "emotion", "action")


def caption_of(text: str, data: dict | None) -> str:
    """One readable caption from a describe reply: the summary, then each person's behavior.

    Without any time the model wrote: clip times come from the index, never from its words.
    """
    return without_times(_caption_text(text, data))


def _caption_text(text: str, data: dict | None) -> str:
    if not isinstance(data, dict):
        return (text or "").strip()
    parts = [str(data["summary"]).strip()] if data.get("summary") else []
    for person in data.get("people") or []:
        if not isinstance(person, dict):
            continue
        seen = [
            f"{field} {', '.join(map(str, _as_list(person.get(field))))}"
            for field in ("emotion", "gestures", "actions")
            if _as_list(person.get(field)) and person.get(field) != "unclear"
        ]
        where = f" ({person['where']})" if person.get("where") else ""
        cues = f"; cues: {person['cues']}" if person.get("cues") else ""
        if seen:
            parts.append(f"Person {person.get('person', '?')}{where}: {'; '.join(seen)}{cues}.")
    return " ".join(parts) or (text or "").strip()


def vlm_detections(data: dict | None, clip: Clip, kb) -> list[Detection]:
    """Knowledge-base classes the VLM named in a clip, spanning the clip (times are ours)."""
    if not isinstance(data, dict) or kb is None:
        return []
    found: dict[str, Detection] = {}
    for number, person in enumerate(data.get("people") or [], start=1):
        if not isinstance(person, dict):
            continue
        person_id = person.get("person")
        for field in ("emotion", "gestures", "actions"):
            for name in _as_list(person.get(field)):
                class_id = _kb_id(str(name), kb)
                if class_id is None or class_id in found:
                    continue
                found[class_id] = Detection(
                    kind=kb.get(class_id).kind,
                    label=class_id,
                    start_s=clip.start_s,
                    end_s=clip.end_s,
                    # A ranking weight, not a measurement: answers show none for it
                    # (Event.measured_confidence counts perception only).
                    confidence=0.5,
                    cues=without_times(str(person.get("cues") or ""))[:300],
                    person_id=person_id if isinstance(person_id, int) else number,
                    source="vlm",
                )
    return list(found.values())


def _kb_id(name: str, kb) -> str | None:
    key = label_key(name)
    if key in kb:
        return key
    for class_id in kb.ids():
        item = kb.get(class_id)
        if key in {label_key(item.name), *(label_key(s) for s in item.synonyms)}:
            return class_id
    return None


def _as_list(value) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def clip_text(
    clip: Clip,
    caption: str,
    detections: list[Detection],
    kb=None,
    objects: list[ObjectSighting] | None = None,
) -> str:
    """Detected events in words with their times, the objects in view, then the caption;
    what gets embedded.

    Events come first because the sentence model reads at most 256 word pieces.
    """
    sentences = []
    for kind in _KIND_ORDER:
        spans: dict[str, list[Detection]] = {}
        for d in detections:
            if d.kind == kind:
                spans.setdefault(d.label, []).append(d)
        for label, found in spans.items():
            sentences.append(_event_sentence(kind, label, found, clip, kb))
    if not sentences:
        sentences.append("No gesture, facial expression or action was detected.")
    if objects:
        sentences.append(_objects_sentence(objects))
    if caption:
        sentences.append(caption.strip())
    return " ".join(sentences)


def thing_texts(
    detections: list[Detection], objects: list[ObjectSighting], kb=None
) -> list[tuple[str, str, str]]:
    """(kind, label, text) for each class detected and each object seen, once each.

    One text names one thing ("Happiness (happy, smiling, joy) facial expression"), so a
    query's words meet that thing alone, never a blend of everything seen in a clip.
    """
    things: dict[tuple[str, str], tuple[str, str]] = {}
    for d in detections:
        name, synonyms = _names(d.label, kb, most=5)
        also = f" ({', '.join(synonyms)})" if synonyms else ""
        text = f"{name}{also} {_NOUNS.get(d.kind, d.kind)}"
        things.setdefault((d.kind, label_key(d.label)), (d.label, text))
    for sighting in objects:
        if sighting.label != "person":  # people are everywhere; the classes say what they do
            key = ("object", label_key(sighting.label))
            name = sighting.label.replace("_", " ")
            things.setdefault(key, (sighting.label, f"{name} in view"))
    return [(kind, label, text) for (kind, _), (label, text) in things.items()]


def _objects_sentence(objects: list[ObjectSighting]) -> str:
    """ "In view: cup (up to 2), cell phone, people, up to 4 at once." (most seen first)."""
    most: dict[str, int] = {}
    for sighting in objects:
        most[sighting.label] = max(most.get(sighting.label, 0), sighting.count)
    people = most.pop("person", 0)
    things = sorted(most, key=lambda label: (-most[label], label))
    named = [f"{label} (up to {most[label]})" if most[label] > 1 else label for label in things]
    if people:
        named.append("one person" if people == 1 else f"people, up to {people} at once")
    return f"In view: {', '.join(named)}."


def _event_sentence(kind: str, label: str, found: list[Detection], clip: Clip, kb) -> str:
    name, synonyms = _names(label, kb)
    also = f" ({', '.join(synonyms)})" if synonyms else ""
    found = sorted(found, key=lambda d: d.start_s)
    times = [_when(d, clip) for d in found[:3]]
    more = f" and {len(found) - 3} more times" if len(found) > 3 else ""
    return f"{name}{also} {_NOUNS[kind]} {', '.join(times)}{more}."


_NOUNS = {"emotion": "facial expression", "gesture": "gesture", "action": "action"}


def _names(label: str, kb, most: int = 3) -> tuple[str, list[str]]:
    """Display name and a few synonyms from the knowledge base (the label itself otherwise)."""
    if kb is not None and label in kb:
        item = kb.get(label)
        synonyms = [s for s in item.synonyms if s.lower() != item.name.lower()][:most]
        return item.name, synonyms
    return label.replace("_", " "), []


def _when(d: Detection, clip: Clip) -> str:
    if d.end_s - d.start_s < 0.05:
        return f"at {format_clock(d.start_s)}"
    if d.start_s <= clip.start_s and d.end_s >= clip.end_s:
        return f"throughout, from {format_clock(d.start_s)} to {format_clock(d.end_s)}"
    return f"from {format_clock(d.start_s)} to {format_clock(d.end_s)}"
