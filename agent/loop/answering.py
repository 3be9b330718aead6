"""From events to replies: build evidence and word the answer.

Pure functions over the merged events (`agent.events`) and plain dicts (the agent's state):
every time cited here comes from a detection or clip record and is clamped to the video; model
text never supplies a time, and what a model wrote is quoted only without the times it wrote.
"""

import re
from typing import Any

from agent.events import Event, clamp_time
from agent.perception.capabilities import capabilities
from agent.planning import Plan
from agent.state import AskedClass, Evidence
from agent.timefmt import format_clock, format_span
from agent.vlm.reply_times import without_times

# Evidence items listed per answer; more would bury the answer. A count lists what it counted.
MAX_EVIDENCE = 8
MAX_COUNTED_EVIDENCE = 50
# Characters of a model's words quoted in a rationale.
MAX_QUOTED = 240
# Labels and times per label listed as "seen instead": context for a not-seen answer, kept short.
MAX_OTHER_LABELS = 4
MAX_OTHER_TIMES = 3
# Classes named in "... the offline backend cannot recognise: ..." before "and N more".
MAX_BLIND_NAMES = 10
# How to get a backend that can check what the offline rules cannot (README section name).
SWITCH_BACKEND = (
    "set BEHAVIOR_AGENT_BACKEND=videollama3 (or pass --backend videollama3) with VideoLLaMA3 "
    'weights, see the README section "Switch to VideoLLaMA3 on a GPU machine"'
)


def count_people(events: list[Event]) -> tuple[int, bool]:
    """(number of people, tracked) — distinct tracked persons, else the most seen at once."""
    ids = {e.person_id for e in events if e.person_id is not None}
    if ids:
        return len(ids), True
    points = sorted([(e.start_s, 1) for e in events] + [(e.end_s, -1) for e in events])
    most = current = 0
    for _, change in points:
        current += change
        most = max(most, current)
    return most, False


def clip_for(time_s: float, clips: list[dict[str, Any]]) -> int | None:
    """The id of the clip that contains a time (the last one starting at or before it)."""
    best = None
    for clip in clips:
        if clip["start_s"] <= time_s + 1e-6:
            best = clip["clip_id"]
    return best


def detection_evidence(
    event: Event, video: dict[str, Any], kb: Any, clips: list[dict[str, Any]], describer: str
) -> Evidence:
    """Evidence for one event; the rationale quotes its cues and the KB definition.

    `describer` names the model that described the clips at indexing, for events it saw.
    """
    duration_s = video["duration_s"]
    start_s = clamp_time(event.start_s, duration_s)
    end_s = max(start_s, clamp_time(event.end_s, duration_s))
    if "vlm" not in event.sources:
        source = "Perception"
    elif len(event.sources) > 1:
        source = f"Perception and {describer}"
    else:
        source = "A" + describer[1:] if describer.startswith("a ") else describer
    cues = event.cues[0] if event.cues else ""
    if "vlm" in event.sources:
        # A model may have written these; perception cues are measurements the system made.
        cues = without_times(cues)
    cues = cues.rstrip(".") or "no cue text recorded"
    rationale = f"{source} saw {class_name(kb, event.label)}: {cues}."
    definition = class_definition(kb, event.label)
    if definition:
        rationale += f' Knowledge base: "{definition}"'
    return Evidence(
        video=video["path"],
        start_s=start_s,
        end_s=end_s,
        kind=event.kind,
        label=event.label,
        confidence=event.measured_confidence,
        rationale=rationale,
        clip_id=clip_for(start_s, clips),
    )


def clip_evidence(
    finding: dict[str, Any], video: dict[str, Any], label: str, kind: str, kb: Any, model: str
) -> Evidence:
    """Evidence for a clip the VLM (`model`) looked at: the clip's own times, the model's
    words (without any time it wrote) as why."""
    duration_s = video["duration_s"]
    start_s = clamp_time(finding["start_s"], duration_s)
    said = model_words(finding)[:MAX_QUOTED]
    if said:
        rationale = f'{model} on this clip: "{said}".'
    else:  # everything it wrote stated a time, which is never passed on
        rationale = f"{model} reports {class_name(kb, label)} in this clip."
    definition = class_definition(kb, label)
    if definition:
        rationale += f' Knowledge base: "{definition}"'
    # No confidence: nothing measured this one (a model's self-rating is not a measurement).
    return Evidence(
        video=video["path"],
        start_s=start_s,
        end_s=max(start_s, clamp_time(finding["end_s"], duration_s)),
        kind=kind,
        label=label,
        rationale=rationale,
        clip_id=finding.get("clip_id"),
    )


def model_words(finding: dict[str, Any]) -> str:
    """What a VLM said about a clip (its `answer`, else its text) without any time it wrote."""
    data = finding.get("data") or {}
    text = data.get("answer") if isinstance(data.get("answer"), str) else finding.get("text")
    return without_times(str(text or ""))


def class_name(kb: Any, class_id: str) -> str:
    try:
        return kb.get(class_id).name
    except Exception:  # a label outside the knowledge base (e.g. a free VLM label)
        return class_id.replace("_", " ")


def class_definition(kb: Any, class_id: str) -> str:
    """The first sentence of the class's definition (quoted in rationales)."""
    try:
        definition = " ".join(kb.get(class_id).definition.split())
    except Exception:
        return ""
    first, dot, _ = definition.partition(". ")
    return first + (dot.strip() or "") if first else definition


def clock(time_s: float, duration_s: float) -> str:
    """mm:ss with tenths for short videos, where a second is a large part of the story."""
    return format_clock(time_s, 1 if duration_s < 600 else 0)


def span(start_s: float, end_s: float, duration_s: float) -> str:
    return format_span(start_s, end_s, 1 if duration_s < 600 else 0)


def window_words(plan: Plan, window: dict[str, float], duration_s: float) -> str:
    """Where the answer looked: "between 01:00 and 02:00", "in the whole video", "in the image"."""
    if duration_s <= 0.0:
        return "in the image"
    if window["start_s"] <= 0.0 and window["end_s"] >= duration_s - 1e-3:
        return f"in the whole video ({span(0.0, duration_s, duration_s)})"
    return (
        f"between {clock(window['start_s'], duration_s)} and {clock(window['end_s'], duration_s)}"
    )


def names(kb: Any, ids: list[str]) -> str:
    labels = [class_name(kb, i) for i in ids]
    if len(labels) <= 1:
        return labels[0] if labels else "the behaviors asked about"
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def pick_occurrence(events: list[Event], plan: Plan) -> list[Event]:
    """The events the question is after: the first, the last, or all of them."""
    if not events:
        return []
    if plan.occurrence == "first":
        return [min(events, key=lambda e: e.start_s)]
    if plan.occurrence == "last":
        return [max(events, key=lambda e: e.start_s)]
    return events


def past_end_answer(plan: Plan, duration_s: float) -> str:
    """The reply to a question about a time the video does not reach."""
    asked = plan.at_s if plan.at_s is not None else plan.start_s or 0.0
    return (
        f"The video is only {clock(duration_s, duration_s)} long, so there is nothing at "
        f"{format_clock(asked)}. Ask about a time between 00:00 and "
        f"{clock(duration_s, duration_s)}."
    )


def when_answer(chosen: list[Event], plan: Plan, kb: Any, duration_s: float) -> str:
    first = chosen[0]
    what = class_name(kb, first.label)
    seen = span(first.start_s, first.end_s, duration_s)
    if plan.wants_duration:
        return f"{what.capitalize()} lasts {first.duration_s:.1f} s ({seen})."
    if plan.onset or plan.occurrence == "first":
        return f"{what.capitalize()} starts at {clock(first.start_s, duration_s)} (seen {seen})."
    if plan.occurrence == "last":
        return f"The last {what} is at {seen}."
    times = ", ".join(span(e.start_s, e.end_s, duration_s) for e in chosen[:MAX_EVIDENCE])
    labels = sorted({class_name(kb, e.label) for e in chosen})
    subject = " / ".join(labels)
    if len(chosen) == 1:
        return f"{subject.capitalize()} at {times}."
    return f"{subject.capitalize()} {len(chosen)} times: {times}."


def how_many_answer(events: list[Event], plan: Plan, kb: Any, where: str) -> str:
    what = names(kb, plan.targets).lower()
    if plan.count_people:
        people, tracked = count_people(events)
        noun = "person was" if people == 1 else "people were"
        if not tracked:
            return (
                f"At least {people} {noun} seen with {what} at the same time {where}; "
                f"perception could not tell people apart here, so it counted "
                f"{len(events)} separate episode(s)."
            )
        # The tracker cannot re-identify someone who is occluded or leaves and comes back, so
        # a track is not a guaranteed person: say which way the count can be wrong.
        return (
            f"{people} {noun} seen {what} {where} ({people} separate tracks; someone hidden "
            "for a while or leaving and coming back can be counted twice, so this may be "
            "an overcount)."
        )
    return f"{what.capitalize()}: {len(events)} time{'s' if len(events) != 1 else ''} {where}."


def compare_answer(events: list[Event], plan: Plan, kb: Any, where: str) -> str:
    totals_s = {t: sum(e.duration_s for e in events if e.label == t) for t in plan.targets}
    parts = [
        f"{class_name(kb, target)}: {sum(e.label == target for e in events)} time(s), "
        f"{totals_s[target]:.1f} s in total"
        for target in plan.targets
    ]
    return f"{'; '.join(parts)} {where}. Most present: {_most_present(totals_s, kb)}."


def _most_present(totals_s: dict[str, float], kb: Any) -> str:
    """The class seen longest, or "neither" when none was seen or the longest are tied (at
    the 0.1 s the answer shows)."""
    shown = {target: round(total_s, 1) for target, total_s in totals_s.items()}
    longest_s = max(shown.values(), default=0.0)
    leaders = [target for target, total_s in shown.items() if total_s == longest_s]
    if longest_s <= 0.0:
        return "neither"
    if len(leaders) > 1:
        tied = " and ".join(class_name(kb, target) for target in leaders)
        return f"neither, {tied} are tied ({longest_s:.1f} s each)"
    return class_name(kb, leaders[0])


def listing_answer(events: list[Event], kb: Any, where: str, duration_s: float) -> str:
    """ "What ..." questions: the behaviors seen, in time order."""
    items = []
    for event in events[:MAX_EVIDENCE]:
        parts = [event.kind]
        if duration_s:
            parts.append(span(event.start_s, event.end_s, duration_s))
        measured = event.measured_confidence
        parts.append(f"confidence {measured:.2f}" if measured is not None else "named by a VLM")
        items.append(f"{class_name(kb, event.label)} ({', '.join(parts)})")
    return f"Seen {where}: " + "; ".join(items) + "."


# --- answers about what was not seen, or cannot be checked --------------------------------------


def lower_name(name: str) -> str:
    """A class name inside a sentence: "Sadness" -> "sadness", "OK sign" stays."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def asked_names(kb: Any, ids: list[str]) -> str:
    """ "sadness", "happiness or sadness": the asked classes, for the middle of a sentence."""
    labels = [lower_name(class_name(kb, i)) for i in ids]
    if len(labels) <= 1:
        return labels[0] if labels else "the behaviors asked about"
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def searched_words(window: dict[str, float], duration_s: float) -> str:
    """Where an answer looked, as a span: "in 00:00.0–00:19.7" (a still: "in the image")."""
    if duration_s <= 0.0:
        return "in the image"
    start_s = clamp_time(window["start_s"], duration_s)
    end_s = max(start_s, clamp_time(window["end_s"], duration_s))
    return f"in {span(start_s, end_s, duration_s)}"


def weak_note(asked: list[AskedClass]) -> str:
    """ "closest class to "comb hair": fidgeting, weak match 0.68" for each weak mapping."""
    notes = [
        f'closest class to "{a.phrase}": {lower_name(a.name)}, weak match {a.match_score:.2f}'
        for a in asked
        if a.weak and a.checkable and a.match_score is not None
    ]
    return "; ".join(notes)


def with_note(text: str, note: str) -> str:
    """`text` with " (note)" at the end of its first sentence (times like 00:01.5 kept whole)."""
    if not note:
        return text
    end = re.search(r"\.(?=\s|$)", text)
    if end is None:
        return f"{text} ({note})"
    return f"{text[: end.start()]} ({note}){text[end.start() :]}"


def not_seen_answer(wanted: str, question_type: str, searched: str, asked: list[AskedClass]) -> str:
    """The first sentence when the asked behavior was not seen: it says so, before anything."""
    sentence = f"I did not see {wanted} {searched}"
    if question_type == "how_many":
        sentence += ", so the count is 0"
    elif question_type == "when":
        sentence += ", so I cannot give a time"
    sentence = with_note(sentence + ".", weak_note(asked))
    return ("No, not seen: " + sentence) if question_type == "yes_no" else sentence


def cannot_recognise(asked: AskedClass) -> str:
    """The declaration for a behavior the backend cannot check: what, how to switch, why."""
    what = asked.phrase or lower_name(asked.name)
    if asked.id is not None and asked.phrase and asked.phrase.lower() != asked.name.lower():
        what += f" (class: {lower_name(asked.name)})"
    return (
        f"The offline backend cannot recognise {what}; switch to a backend that can: "
        f"{SWITCH_BACKEND}. Why: {asked.reason or 'no offline rule observes it'}."
    )


def uncheckable_of_kinds(kb: Any, ctx: Any, kinds: list[str]) -> str:
    """ "Actions the offline backend cannot recognise, so they may have happened unseen:
    applying makeup, … To check them, set …" ("" when it checks every class of those kinds)."""
    found = capabilities(kb, ctx)
    blind = [
        lower_name(kb.get(class_id).name)
        for class_id in kb.ids()
        if kb.get(class_id).kind in kinds and not found[class_id].checkable
    ]
    if not blind:
        return ""
    what = " or ".join(f"{kind}s" for kind in kinds).capitalize()
    shown = ", ".join(blind[:MAX_BLIND_NAMES])
    more = f" and {len(blind) - MAX_BLIND_NAMES} more" if len(blind) > MAX_BLIND_NAMES else ""
    return (
        f"{what} the offline backend cannot recognise, so they may have happened unseen: "
        f"{shown}{more}. To check them, {SWITCH_BACKEND}."
    )


SEEN_INSTEAD = "Seen instead (other observations, not the answer)"
SEEN_OUTSIDE = "Seen outside that window, when the search was widened (not the answer)"


def other_observations(events: list[Event], kb: Any, duration_s: float, lead: str) -> str:
    """ "<lead>: happiness at 00:01.5–00:02.0; face touching at …" (labels in time order)."""
    by_label: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.start_s):
        by_label.setdefault(event.label, []).append(event)
    parts = []
    for label, found in list(by_label.items())[:MAX_OTHER_LABELS]:
        name = lower_name(class_name(kb, label))
        if duration_s <= 0:  # a still image has no times
            parts.append(f"{name} in the image")
            continue
        times = ", ".join(span(e.start_s, e.end_s, duration_s) for e in found[:MAX_OTHER_TIMES])
        more = f" and {len(found) - MAX_OTHER_TIMES} more" if len(found) > MAX_OTHER_TIMES else ""
        parts.append(f"{name} at {times}{more}")
    return f"{lead}: " + "; ".join(parts) + "."
