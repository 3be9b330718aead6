"""What the answer node says: the answer contract applied to the retrieved events.

An answer never changes the question (DESIGN.md). What the backend cannot check is declared
("The offline backend cannot recognise ..."), never searched for; an asked class that was not
seen is said to be not seen first ("I did not see sadness in 00:00.0–00:19.7"), and what was
seen instead follows as other observations, in `other_evidence`, never in `evidence`. The asked
class found only outside the window the question named is likewise an other observation.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.context import Context
from agent.events import Event, clamp_time, label_key, merge_detections, spans_overlap
from agent.loop import answering as say
from agent.planning import Plan
from agent.provenance import vlm_label
from agent.state import AgentState, AskedClass, Detection, Evidence
from agent.vlm.parsing import says_present

# Characters of the VLM's own answer quoted in the reply.
MAX_MODEL_WORDS = 300


@dataclass
class Composed:
    """The words of an answer, the evidence for the question as asked, and the rest."""

    text: str
    evidence: list[Evidence] = field(default_factory=list)
    other_evidence: list[Evidence] = field(default_factory=list)
    found: bool = False


def compose(state: AgentState, the_plan: Plan, deps: Any, clips: list[dict]) -> Composed:
    """The reply of the answer node (`deps` is the graph's AgentDeps)."""
    video, kb = state["video"], deps.kb
    duration_s = float(video["duration_s"])
    window = state.get("window") or {"start_s": 0.0, "end_s": duration_s}
    if past_end(window["start_s"], duration_s):
        return Composed(say.past_end_answer(the_plan, duration_s))
    if "no_history" in (state.get("notes") or []):
        return Composed(
            "There is no earlier answer in this conversation to follow up on; "
            "please ask the full question."
        )
    if the_plan.follow_up == "duration":
        return _duration_follow_up(state, kb, duration_s)
    asked = [AskedClass.model_validate(a) for a in state.get("asked") or []]
    declared = [a for a in asked if not a.checkable]
    declaration = " ".join(say.cannot_recognise(a) for a in declared)
    if declared and not any(a.checkable for a in asked):
        return Composed(declaration)
    unchecked = {a.id for a in declared if a.id}
    if unchecked:
        targets = [t for t in the_plan.targets if t not in unchecked]
        the_plan = the_plan.model_copy(update={"targets": targets})
    composed = _checked(state, the_plan, deps, clips, asked)
    if declaration:
        composed.text = f"{declaration} {composed.text}"
    return composed


def past_end(start_s: float, duration_s: float) -> bool:
    """Whether a window starts past the end (a still lasts 0 s: a window at 0 is inside it)."""
    return start_s > duration_s or (start_s == duration_s and duration_s > 0)


def state_events(state: AgentState, ctx: Context) -> list[Event]:
    """The retrieved detections merged into events (the rule reports and evaluation use)."""
    detections = [Detection.model_validate(d) for d in state.get("detections") or []]
    return merge_detections(detections, float(state["video"]["duration_s"]), ctx)


def target_names(the_plan: Plan, kb: Any) -> list[str]:
    """Every way the asked behaviors are named (id, name, synonyms, or the question's words
    when no class matches): what a VLM's label may say."""
    names: list[str] = []
    for target in the_plan.targets:
        item = kb.get(target)
        names += [target, item.name, *item.synonyms]
    unmatched = the_plan.unmatched()
    if unmatched is not None and not the_plan.targets:
        names.append(unmatched.phrase)
    return names


def _checked(
    state: AgentState, the_plan: Plan, deps: Any, clips: list[dict], asked: list[AskedClass]
) -> Composed:
    """The answer from what the backend checked: found, found elsewhere, or not seen."""
    video, kb = state["video"], deps.kb
    duration_s = float(video["duration_s"])
    events = state_events(state, deps.ctx)
    describer = _describer(deps, video)
    asked_window = _asked_window(the_plan, duration_s)
    if asked_window is not None and events:
        inside = [e for e in events if _event_in(e, asked_window)]
        if not inside:  # found only after the search was widened past the asked window
            return _found_elsewhere(events, state, the_plan, asked_window, deps, clips, asked)
        events = inside
    if events:
        chosen = say.pick_occurrence(events, the_plan)
        how_many = the_plan.question_type == "how_many"
        limit = say.MAX_COUNTED_EVIDENCE if how_many else say.MAX_EVIDENCE
        evidence = [say.detection_evidence(e, video, kb, clips, describer) for e in chosen[:limit]]
        text = _found_wording(state, the_plan, events, chosen, deps)
        return Composed(say.with_note(text, say.weak_note(asked)), evidence, found=True)
    vlm_evidence = _vlm_evidence(state, the_plan, deps)
    if the_plan.targets or the_plan.unmatched() is not None:
        if vlm_evidence:
            text = _vlm_found_wording(state, the_plan, vlm_evidence, deps)
            return Composed(text, vlm_evidence, found=True)
        return _not_seen(state, the_plan, deps, clips, asked)
    text = _open_nothing(state, the_plan, vlm_evidence, deps)
    composed = Composed(text, vlm_evidence, found=bool(vlm_evidence))
    if the_plan.kinds and not vlm_evidence and the_plan.follow_up != "after_that":
        _add_other_kinds(composed, state, the_plan, deps, clips)
    return composed


def _add_other_kinds(
    composed: Composed, state: AgentState, the_plan: Plan, deps: Any, clips: list[dict]
) -> None:
    """An open question about one kind ("what is she doing?") with nothing of that kind seen:
    what the backend cannot check of that kind, then what of other kinds was seen (as other
    observations, never the answer)."""
    if deps.vlm is None:
        blind = say.uncheckable_of_kinds(deps.kb, deps.ctx, the_plan.kinds)
        if blind:
            composed.text += " " + blind
    events = _window_events(state, deps, lambda d: d["kind"] not in the_plan.kinds)
    if events:
        duration_s = float(state["video"]["duration_s"])
        composed.text += " " + say.other_observations(events, deps.kb, duration_s, say.SEEN_INSTEAD)
        composed.other_evidence = _evidence_of(events, state, deps, clips)


def _event_in(event: Event, window: dict[str, float]) -> bool:
    return spans_overlap(event.start_s, event.end_s, window["start_s"], window["end_s"])


def _found_wording(
    state: AgentState, the_plan: Plan, events: list[Event], chosen: list[Event], deps: Any
) -> str:
    kb, duration_s = deps.kb, float(state["video"]["duration_s"])
    where = say.window_words(the_plan, state["window"], duration_s)
    kind = the_plan.question_type
    if kind == "how_many":
        return say.how_many_answer(events, the_plan, kb, where)
    if kind == "compare" and len(the_plan.targets) >= 2:
        return say.compare_answer(events, the_plan, kb, where)
    if kind == "yes_no":
        return "Yes. " + say.when_answer(chosen, the_plan, kb, duration_s)
    if kind in {"when", "compare"} and the_plan.targets:
        return say.when_answer(chosen, the_plan, kb, duration_s)
    text = say.listing_answer(events, kb, where, duration_s)
    return f"{text} {_model_says(state, deps)}".strip()


def _wanted(the_plan: Plan, kb: Any) -> str:
    unmatched = the_plan.unmatched()
    if not the_plan.targets and unmatched is not None:
        return unmatched.phrase
    return say.asked_names(kb, the_plan.targets)


def _not_seen(
    state: AgentState, the_plan: Plan, deps: Any, clips: list[dict], asked: list[AskedClass]
) -> Composed:
    """Not seen: say so first; other classes of the asked kinds in the window may follow."""
    video, kb = state["video"], deps.kb
    duration_s = float(video["duration_s"])
    searched = say.searched_words(state["window"], duration_s)
    text = say.not_seen_answer(_wanted(the_plan, kb), the_plan.question_type, searched, asked)
    others = _other_events(state, the_plan, deps)
    if others:
        text += " " + say.other_observations(others, kb, duration_s, say.SEEN_INSTEAD)
    model_text = _model_says(state, deps)
    if model_text:
        text += " " + model_text
    return Composed(text, [], _evidence_of(others, state, deps, clips))


def _found_elsewhere(
    events: list[Event],
    state: AgentState,
    the_plan: Plan,
    asked_window: dict[str, float],
    deps: Any,
    clips: list[dict],
    asked: list[AskedClass],
) -> Composed:
    """Nothing in the window the question named; what the widened search found is context."""
    kb, duration_s = deps.kb, float(state["video"]["duration_s"])
    searched = say.window_words(the_plan, asked_window, duration_s)
    if the_plan.targets:
        text = say.not_seen_answer(_wanted(the_plan, kb), the_plan.question_type, searched, asked)
    else:
        text = f"I did not see anything I can recognise {searched}."
    text += " " + say.other_observations(events, kb, duration_s, say.SEEN_OUTSIDE)
    return Composed(text, [], _evidence_of(events, state, deps, clips))


def _other_events(state: AgentState, the_plan: Plan, deps: Any) -> list[Event]:
    """Events of other classes, of the asked classes' kinds, in the window searched."""
    kinds = {deps.kb.get(t).kind for t in the_plan.targets}
    asked = {label_key(t) for t in the_plan.targets}
    return _window_events(
        state,
        deps,
        lambda d: label_key(d["label"]) not in asked and (not kinds or d["kind"] in kinds),
    )


def _window_events(
    state: AgentState, deps: Any, keep: Callable[[dict[str, Any]], bool]
) -> list[Event]:
    """The video's detections in the window searched that `keep` accepts, merged into events
    by the one rule."""
    video, window = state["video"], state["window"]
    records = [_as_dict(d) for d in deps.index.detections(video["sha256"])] if deps.index else []
    chosen = [
        Detection.model_validate(d)
        for d in records
        if keep(d) and spans_overlap(d["start_s"], d["end_s"], window["start_s"], window["end_s"])
    ]
    return merge_detections(chosen, float(video["duration_s"]), deps.ctx)


def _evidence_of(events: list[Event], state: AgentState, deps: Any, clips: list[dict]):
    describer = _describer(deps, state["video"])
    ordered = sorted(events, key=lambda e: e.start_s)[: say.MAX_EVIDENCE]
    return [say.detection_evidence(e, state["video"], deps.kb, clips, describer) for e in ordered]


def _as_dict(record: Any) -> dict[str, Any]:
    return record.model_dump() if hasattr(record, "model_dump") else dict(record)


def _asked_window(the_plan: Plan, duration_s: float) -> dict[str, float] | None:
    """The window the question itself named ("between 1:00 and 2:00"), if any."""
    if not the_plan.has_window() or the_plan.follow_up is not None:
        return None
    start_s = the_plan.start_s or 0.0
    end_s = min(the_plan.end_s if the_plan.end_s is not None else duration_s, duration_s)
    return {"start_s": start_s, "end_s": end_s}


def video_turns(state: AgentState) -> list[dict[str, Any]]:
    """The thread's earlier turns about this video: a follow-up never reads another video's."""
    sha256 = state["video"]["sha256"]
    return [turn for turn in state.get("history") or [] if turn.get("sha256") == sha256]


def _duration_follow_up(state: AgentState, kb: Any, duration_s: float) -> Composed:
    previous = next(t for t in reversed(video_turns(state)) if t.get("evidence"))
    focus = Evidence.model_validate(previous["evidence"][0])
    start_s = clamp_time(focus.start_s, duration_s)
    end_s = max(start_s, clamp_time(focus.end_s, duration_s))
    focus = focus.model_copy(update={"start_s": start_s, "end_s": end_s})
    length_s = end_s - start_s
    text = (
        f"{say.class_name(kb, focus.label).capitalize()} lasted {length_s:.1f} s "
        f"({say.span(focus.start_s, focus.end_s, duration_s)})."
    )
    return Composed(text, [focus], found=True)


def _describer(deps: Any, video: dict[str, Any]) -> str:
    """The model that described the video's clips at indexing, as its index record names it."""
    record = getattr(deps.index, "video", None)
    record = record(video["sha256"]) if callable(record) else None
    named = (getattr(record, "settings", None) or {}).get("vlm") if record else None
    return str(named) if named else "a vision-language model"


def _vlm_evidence(state: AgentState, the_plan: Plan, deps: Any) -> list[Evidence]:
    """Clip-level evidence from VLM findings that say the asked behavior is there."""
    kb, model = deps.kb, vlm_label(deps.vlm) if deps.vlm is not None else "the VLM"
    unmatched = the_plan.unmatched()
    findings = state.get("findings") or []
    if the_plan.targets:
        names = target_names(the_plan, kb)
        labelled = [
            (finding, target)
            for finding in findings
            if says_present(finding.get("data"), names)
            for target in _named_targets(finding, the_plan, kb)
        ]
        return [
            say.clip_evidence(f, state["video"], target, kb.get(target).kind, kb, model)
            for f, target in labelled[:3]
        ]
    if unmatched is not None:
        label = label_key(unmatched.phrase)
        findings = [f for f in findings if says_present(f.get("data"), [unmatched.phrase])]
    else:
        label = "observation"
        findings = [f for f in findings if say.model_words(f)]
    video = state["video"]
    return [say.clip_evidence(f, video, label, "observation", kb, model) for f in findings[:3]]


def _named_targets(finding: dict[str, Any], the_plan: Plan, kb: Any) -> list[str]:
    """The asked classes a VLM reply says are there, each by its own names: a moment's label,
    else the answer's words. One asked class is the reply's subject even unnamed; of several,
    a reply that names none is evidence of none (its presence cannot be given a class)."""
    targets = the_plan.targets
    data = finding.get("data") or {}
    named = [
        target
        for target in targets
        if says_present({"moments": data.get("moments") or []}, _names_of(target, kb))
        or _words_name(say.model_words(finding), _names_of(target, kb))
    ]
    if named:
        return named
    return list(targets) if len(targets) == 1 else []


def _names_of(target: str, kb: Any) -> list[str]:
    item = kb.get(target)
    return [target.replace("_", " "), item.name, *item.synonyms]


def _words_name(text: str, names: list[str]) -> bool:
    """Whether a sentence of `text` names one of `names` and denies nothing."""
    for sentence in re.split(r"(?<=[.!?;])\s+", text.lower()):
        if _NEGATION.search(sentence):
            continue
        if any(re.search(rf"(?<![a-z]){re.escape(n.lower())}(?![a-z])", sentence) for n in names):
            return True
    return False


_NEGATION = re.compile(r"\b(?:no|not|never|nobody|none|without|isn't|doesn't|don't)\b")


def _vlm_found_wording(
    state: AgentState, the_plan: Plan, evidence: list[Evidence], deps: Any
) -> str:
    """Perception saw nothing, the VLM says the behavior is in these clips."""
    duration_s = float(state["video"]["duration_s"])
    where = say.window_words(the_plan, state["window"], duration_s)
    clips = ", ".join(say.span(e.start_s, e.end_s, duration_s) for e in evidence)
    model = vlm_label(deps.vlm) if deps.vlm is not None else "The VLM"
    return (
        f"Perception detected no {_wanted(the_plan, deps.kb)} {where}; {model} reports it in "
        f"{len(evidence)} clip(s): {clips}. {_model_says(state, deps)}"
    ).strip()


def _open_nothing(state: AgentState, the_plan: Plan, evidence: list[Evidence], deps: Any) -> str:
    """An open question ("what is she doing?") with nothing detected."""
    duration_s = float(state["video"]["duration_s"])
    where = say.window_words(the_plan, state["window"], duration_s)
    model_text = _model_says(state, deps)
    if evidence and model_text:
        return f"Perception detected nothing {where}; {model_text}"
    if model_text:
        return f"{where.capitalize()}: {model_text}"
    if the_plan.follow_up == "after_that":
        start_s = state["window"]["start_s"]
        return (
            f"Nothing else was detected after {say.clock(start_s, duration_s)} "
            f"(up to the end of the video at {say.clock(duration_s, duration_s)})."
        )
    passes = state.get("step", 0)
    searched = f"(searched {passes} time{'s' if passes != 1 else ''}, detections and clip index)"
    if the_plan.kinds:
        kinds = " or ".join(the_plan.kinds)
        return f"I did not see any {kinds} {say.searched_words(state['window'], duration_s)}."
    return f"Nothing that I can recognise was detected {where} {searched}."


def _model_says(state: AgentState, deps: Any) -> str:
    """ "<model> says: <its answer>" from the first inspected clip with words to quote.

    The model's words only: any sentence or clause in which it wrote a time is left out
    (the system cites the times it computes), and "" when nothing is left.
    """
    for finding in state.get("findings") or []:
        words = say.model_words(finding)
        if words:
            model = vlm_label(deps.vlm) if deps.vlm is not None else "The VLM"
            return f"{model} says: {words[:MAX_MODEL_WORDS]}"
    return ""
