"""The agent's nodes (plan, retrieve, inspect, verify, answer) and its routers (route_*).

Nodes read the plain-data state and return updates; heavy resources come from the runtime
context (`AgentDeps`). Progress and VLM tokens go to LangGraph's custom stream as dicts:
`{"type": "progress", "stage", "message", "done", "total"}` and `{"type": "token", "text"}`.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent import answering as say
from agent.checkable import asked_classes
from agent.composing import compose, past_end, state_events, target_names
from agent.context import Context
from agent.events import label_key, spans_overlap
from agent.planning import Plan, plan_question, plan_schema_json, refine_plan
from agent.provenance import model_provenance
from agent.state import AgentState, Answer, AskedClass, VideoInfo
from agent.vlm.parsing import says_present

log = logging.getLogger(__name__)

Strategy = Literal["synonyms", "neighbours", "widen"]
# Frames shown to a VLM that refines the plan: enough to see who is there, cheap to encode.
PLAN_FRAMES = 4
# A plan is a short JSON object; more tokens would only be spent on rambling.
PLAN_MAX_NEW_TOKENS = 160
# Floor for extra classes taken from the knowledge base when re-querying with synonyms.
SYNONYM_MATCH_FLOOR = 0.35


@dataclass
class AgentDeps:
    """What the nodes use but the state must not hold: settings and heavy resources."""

    ctx: Context
    index: Any  # agent.index.ClipIndex (or a test double with the same methods)
    kb: Any  # agent.knowledge.KnowledgeBase
    vlm: Any | None = None  # agent.vlm.VLM; None = perception backend only
    # agent.perception.Perceiver and the session class, to look closer at onsets; None = off.
    perceiver: Any | None = None
    session_factory: Any | None = None


def _emit(runtime: Runtime[AgentDeps], stage: str, message: str, done: int = 0, total: int = 0):
    runtime.stream_writer(
        {"type": "progress", "stage": stage, "message": message, "done": done, "total": total}
    )


def _plan(state: AgentState) -> Plan:
    return Plan.model_validate(state["plan"])


# --- plan -------------------------------------------------------------------------------------


def plan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Understand the question: rules first, then (with a VLM) a validated refinement."""
    deps, video, question = runtime.context, state["video"], state["question"]
    _emit(runtime, "plan", f"planning: {question}")
    the_plan = plan_question(question, deps.kb, video["duration_s"], deps.ctx)
    notes: list[str] = []
    trace = [f"rules: {the_plan.question_type}, targets {the_plan.targets or 'none'}"]
    if the_plan.follow_up is not None:
        same_video = [t for t in state.get("history") or [] if t.get("sha256") == video["sha256"]]
        the_plan, note = _resolve_follow_up(the_plan, same_video)
        notes += [note] if note else []
    elif deps.vlm is not None:
        the_plan, note = _refine_with_vlm(the_plan, question, video, deps)
        trace.append(note)
    window = _initial_window(the_plan, video)
    asked = asked_classes(the_plan, deps.kb, deps.ctx, deps.vlm)
    unchecked = [a.id or a.phrase for a in asked if not a.checkable]
    if unchecked:
        trace.append(f"the backend cannot check {unchecked}: declared, not searched")
    return {
        "plan": the_plan.model_dump(),
        "asked": [a.model_dump() for a in asked],
        "window": window,
        "query": the_plan.query,
        "step": 0,
        "tried": [],
        "hits": [],
        "detections": [],
        "findings": [],
        "verdict": "retry",
        "reason": "",
        "trace": trace,
        "notes": notes,
        "answer": {},
    }


def _initial_window(the_plan: Plan, video: dict[str, Any]) -> dict[str, float]:
    duration_s = float(video["duration_s"])
    start_s = the_plan.start_s if the_plan.start_s is not None else 0.0
    end_s = the_plan.end_s if the_plan.end_s is not None else duration_s
    # Past the end stays past the end (route_plan answers it); otherwise clamp to the video.
    if past_end(start_s, duration_s):
        return {"start_s": start_s, "end_s": max(end_s, start_s)}
    return {"start_s": start_s, "end_s": min(end_s, duration_s)}


def _resolve_follow_up(the_plan: Plan, history: list[dict[str, Any]]) -> tuple[Plan, str]:
    """Ground "and after that?" / "how long did it last?" in the previous answer's evidence."""
    previous = next((t for t in reversed(history) if t.get("evidence")), None)
    if previous is None:
        return the_plan, "no_history"
    focus = previous["evidence"][0]
    before = Plan.model_validate(previous["plan"])
    if the_plan.follow_up == "after_that":
        update = {"start_s": focus["end_s"], "end_s": None, "kinds": [], "targets": []}
    elif the_plan.follow_up == "before_that":
        update = {"start_s": 0.0, "end_s": focus["start_s"], "kinds": [], "targets": []}
    else:
        update = {"targets": before.targets or [focus["label"]]}
    return the_plan.model_copy(update=update), ""


def _refine_with_vlm(
    rule_plan: Plan, question: str, video: dict[str, Any], deps: AgentDeps
) -> tuple[Plan, str]:
    """Ask the VLM for a plan as JSON; the rule plan stands on any parse or schema failure.

    Uses the backend's free-form `generate` (the plan prompt is not a question about frames);
    a VLM without it keeps the rule plan.
    """
    from agent.video import sample_frames
    from agent.vlm.parsing import extract_json
    from agent.vlm.prompting import render_prompt

    generate = getattr(deps.vlm, "generate", None)
    if generate is None:
        return rule_plan, "the model offers no free-form generation; the rule-based plan stands"
    prompt = render_prompt(
        "plan_question",
        question=question,
        rule_plan=json.dumps(rule_plan.model_dump()),
        schema=plan_schema_json(),
        class_ids=", ".join(deps.kb.ids()),
    )
    try:
        frames = sample_frames(video["path"], num_frames=PLAN_FRAMES, ctx=deps.ctx)
        reply = generate(
            prompt, frames, VideoInfo.model_validate(video), max_new_tokens=PLAN_MAX_NEW_TOKENS
        )
    except Exception as error:  # a failing model must not lose the question
        log.warning("VLM plan refinement failed: %s", error)
        return rule_plan, f"the model could not refine the plan ({error}); rule plan stands"
    return refine_plan(rule_plan, extract_json(reply.text), set(deps.kb.ids()))


def route_plan(state: AgentState) -> Literal["retrieve", "answer"]:
    """Straight to the answer when there is nothing to search: past the end, or a follow-up
    that the previous answer already settles (or cannot, having no evidence)."""
    the_plan = _plan(state)
    if past_end(state["window"]["start_s"], state["video"]["duration_s"]):
        return "answer"
    if the_plan.follow_up == "duration" or "no_history" in (state.get("notes") or []):
        return "answer"
    if not _checkable_asked(state) and _asked(state):
        return "answer"  # nothing asked can be checked: declare it, search nothing
    return "retrieve"


def _asked(state: AgentState) -> list[AskedClass]:
    return [AskedClass.model_validate(a) for a in state.get("asked") or []]


def _checkable_asked(state: AgentState) -> list[AskedClass]:
    return [a for a in _asked(state) if a.checkable]


def _unchecked_ids(state: AgentState) -> set[str]:
    return {a.id for a in _asked(state) if not a.checkable and a.id}


# --- retrieve ---------------------------------------------------------------------------------


def retrieve(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Search the index in the window; collect the detections of the target classes."""
    deps, video, the_plan = runtime.context, state["video"], _plan(state)
    step = state.get("step", 0) + 1
    window, notes = dict(state["window"]), list(state.get("notes") or [])
    _emit(
        runtime,
        "retrieve",
        f"retrieving (pass {step} of {deps.ctx.max_agent_steps})",
        step,
        deps.ctx.max_agent_steps,
    )
    all_detections = [_as_dict(d) for d in deps.index.detections(video["sha256"])]
    if step == 1 and the_plan.anchor is not None:
        window, note = _anchor_window(the_plan, window, all_detections, deps.kb, video)
        notes += [note] if note else []
    labels = _wanted_labels(the_plan, deps.kb, _unchecked_ids(state))
    # A behavior that names no class (asked of a VLM) is not any detected class.
    names_none = not labels and the_plan.unmatched() is not None
    detections = [
        d
        for d in all_detections
        if not names_none
        and (not labels or label_key(d["label"]) in labels)
        and _overlaps(d, window)
    ]
    detections, note = _only_subject(detections, the_plan)
    if note and note not in notes:
        notes.append(note)
    hits = deps.index.search(
        state.get("query") or the_plan.query,
        deps.ctx.top_k,
        video=video["sha256"],
        start_s=window["start_s"],
        end_s=window["end_s"],
    )
    hit_dicts = [_hit_dict(h) for h in hits]
    line = (
        f"pass {step}: {len(detections)} detection(s) of {sorted(labels) or 'any class'}, "
        f"{len(hit_dicts)} clip(s) for '{state.get('query') or the_plan.query}' in "
        f"{window['start_s']:.1f}-{window['end_s']:.1f} s"
    )
    return {
        "step": step,
        "window": window,
        "detections": detections,
        "hits": hit_dicts,
        "notes": notes,
        "trace": [*state.get("trace", []), line],
    }


def _as_dict(record: Any) -> dict[str, Any]:
    return record.model_dump() if hasattr(record, "model_dump") else dict(record)


def _hit_dict(hit: Any) -> dict[str, Any]:
    """The plain part of a search hit (detections are re-read from the index by label)."""
    return {
        "clip_id": int(hit.clip_id),
        "start_s": float(hit.start_s),
        "end_s": float(hit.end_s),
        "score": float(hit.score),
        "caption": str(getattr(hit, "caption", "") or ""),
    }


def _overlaps(item: dict[str, Any], window: dict[str, float]) -> bool:
    """Spans must share time (one that ends where "after that" starts is not after it);
    stills and instants count inside the window, ends included."""
    return spans_overlap(item["start_s"], item["end_s"], window["start_s"], window["end_s"])


def _wanted_labels(the_plan: Plan, kb: Any, unchecked: set[str]) -> set[str]:
    """The checkable target ids; else every class of the asked kinds; empty = any label.

    Only the asked classes count: a re-query with synonyms changes the search text, never the
    classes accepted as the answer (another class is another answer to another question).
    """
    labels = {t for t in the_plan.targets if t not in unchecked}
    if not the_plan.targets and the_plan.kinds:
        labels = {i for kind in the_plan.kinds for i in kb.ids(kind)}
    return {label_key(label) for label in labels}


def _anchor_window(
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


def _only_subject(detections: list[dict], the_plan: Plan) -> tuple[list[dict], str]:
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


# --- inspect ----------------------------------------------------------------------------------


def inspect(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Look closer at the best clips: the VLM's answer on frames re-sampled at inspect_fps."""
    deps, video = runtime.context, state["video"]
    clips = _clips_to_inspect(state, deps)
    findings = list(state.get("findings") or [])
    seen = {f["clip_id"] for f in findings}
    for number, clip in enumerate(clips, start=1):
        seen_here = _labels_in(state.get("detections") or [], clip, deps.kb)
        _emit(
            runtime,
            "inspect",
            f"inspecting clip {number}/{len(clips)} "
            f"({say.span(clip['start_s'], clip['end_s'], video['duration_s'])}): {seen_here}",
            number,
            len(clips),
        )
        if deps.vlm is None or clip["clip_id"] in seen:
            continue
        findings.append(_ask_vlm(state, deps, clip, runtime))
    line = f"inspected {len(clips)} clip(s)" + (" with the VLM" if deps.vlm else "")
    update: dict[str, Any] = {"findings": findings}
    refined = _refine_onset(state, deps, runtime)
    if refined is not None:
        update["detections"], note = refined
        line += f"; {note}"
    return {**update, "trace": [*state.get("trace", []), line]}


# Re-perceive this long before an onset (one coarse sampling step plus a margin) and after it.
REFINE_BEFORE_PAD_S = 0.1
REFINE_AFTER_S = 0.5


def _refine_onset(
    state: AgentState, deps: AgentDeps, runtime: Runtime[AgentDeps]
) -> tuple[list[dict[str, Any]], str] | None:
    """Look closer at the first event's start with perception at `refine_fps`.

    The index samples at `sample_fps` (0.5 s steps by default); an onset question deserves the
    0.1 s grid. The refined start is taken only if it lies between the last coarse frame
    without the behavior and the first one with it. Returns None when nothing was refined.
    """
    the_plan, detections = _plan(state), list(state.get("detections") or [])
    wants_onset = the_plan.onset or the_plan.occurrence == "first"
    if deps.perceiver is None or not wants_onset or not detections or not the_plan.targets:
        return None
    first = min(detections, key=lambda d: d["start_s"])
    if first["start_s"] <= 0.0 or first.get("source") == "vlm":
        return None
    step_s = 1.0 / deps.ctx.sample_fps
    lo_s = max(0.0, first["start_s"] - step_s - REFINE_BEFORE_PAD_S)
    hi_s = min(float(state["video"]["duration_s"]), first["start_s"] + REFINE_AFTER_S)
    _emit(
        runtime,
        "inspect",
        f"looking closer at {lo_s:.1f}-{hi_s:.1f} s ({deps.ctx.refine_fps:g} fps) for the onset",
    )
    closer = _perceive_span(VideoInfo.model_validate(state["video"]), lo_s, hi_s, deps)
    starts = [
        d.start_s
        for d in closer
        if label_key(d.label) == label_key(first["label"]) and lo_s < d.start_s < first["start_s"]
    ]
    if not starts:
        return None
    onset_s = min(starts)
    refined = dict(first, start_s=round(onset_s, 3))
    refined["cues"] = (first.get("cues") or "") + f" (onset refined at {deps.ctx.refine_fps:g} fps)"
    updated = [refined if d is first else d for d in detections]
    return updated, f"onset refined from {first['start_s']:.2f} s to {onset_s:.2f} s"


def _perceive_span(info: VideoInfo, start_s: float, end_s: float, deps: AgentDeps) -> list[Any]:
    from agent.perception.runner import perceive_path

    return perceive_path(
        info.path,
        deps.ctx,
        deps.kb,
        deps.perceiver,
        start_s=start_s,
        end_s=end_s,
        fps=deps.ctx.refine_fps,
        session_factory=deps.session_factory,
        info=info,
    )


def _labels_in(detections: list[dict[str, Any]], clip: dict[str, Any], kb: Any) -> str:
    """ "thumbs up ×2, happy" for the detections inside a clip (progress text)."""
    counts: dict[str, int] = {}
    for det in detections:
        if _overlaps(det, clip):
            name = say.class_name(kb, det["label"])
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return "no target detections"
    return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items())


def _clips_to_inspect(state: AgentState, deps: AgentDeps) -> list[dict[str, Any]]:
    """Clips holding target detections (most confident first), then the search hits."""
    clips = [_as_dict(c) for c in deps.index.clips(state["video"]["sha256"])]
    chosen: dict[int, dict[str, Any]] = {}
    for det in sorted(state.get("detections") or [], key=lambda d: -d["confidence"]):
        clip_id = say.clip_for(det["start_s"], clips)
        match = next((c for c in clips if c["clip_id"] == clip_id), None)
        if match is not None:
            chosen.setdefault(clip_id, match)
    for hit in state.get("hits") or []:
        chosen.setdefault(hit["clip_id"], hit)
    return [
        {"clip_id": c["clip_id"], "start_s": float(c["start_s"]), "end_s": float(c["end_s"])}
        for c in list(chosen.values())[: deps.ctx.inspect_clips]
    ]


def _ask_vlm(
    state: AgentState, deps: AgentDeps, clip: dict[str, Any], runtime: Runtime[AgentDeps]
) -> dict[str, Any]:
    from agent.video import sample_frames

    video, the_plan = state["video"], _plan(state)
    frames = sample_frames(
        video["path"],
        clip["start_s"],
        clip["end_s"],
        fps=deps.ctx.inspect_fps,
        max_frames=deps.ctx.max_frames_per_call,
        ctx=deps.ctx,
    )
    ids = the_plan.targets or [i for kind in the_plan.kinds for i in deps.kb.ids(kind)]
    snippet = deps.kb.prompt_snippet(ids) if ids else ""

    def on_token(text: str) -> None:
        runtime.stream_writer({"type": "token", "text": text, "clip_id": clip["clip_id"]})

    try:
        reply = deps.vlm.answer(
            state["question"], frames, VideoInfo.model_validate(video), snippet, on_token=on_token
        )
    except Exception as error:  # one failing clip must not lose the others
        log.warning("VLM failed on clip %s: %s", clip["clip_id"], error)
        return {**clip, "text": "", "data": None, "error": str(error)}
    data = reply.data if isinstance(reply.data, dict) else None
    return {**clip, "text": reply.text, "data": _plain(data)}


def _plain(value: Any) -> Any:
    """JSON round trip: only primitives reach the checkpointer."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None


# --- verify -----------------------------------------------------------------------------------


def verify(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Is the answer supported? If not, pick the next way to look again, within the budget."""
    deps, the_plan = runtime.context, _plan(state)
    trace = list(state.get("trace", []))
    if _supported(state, the_plan, deps):
        _emit(runtime, "verify", "evidence found")
        return {"verdict": "answer", "reason": "supported", "trace": [*trace, "verify: supported"]}
    if state.get("step", 0) >= deps.ctx.max_agent_steps:
        _emit(runtime, "verify", "step budget spent")
        return {"verdict": "answer", "reason": "budget", "trace": [*trace, "verify: budget spent"]}
    strategy = _next_strategy(state, the_plan)
    if strategy is None:
        return {"verdict": "answer", "reason": "exhausted", "trace": [*trace, "verify: no more"]}
    update = _apply_strategy(strategy, state, the_plan, deps)
    _emit(runtime, "verify", f"not found yet; trying again ({strategy})")
    return {
        **update,
        "verdict": "retry",
        "reason": strategy,
        "tried": [*state.get("tried", []), strategy],
        "trace": [*trace, f"verify: unsupported, retry with {strategy}"],
    }


def _supported(state: AgentState, the_plan: Plan, deps: AgentDeps) -> bool:
    if state_events(state, deps.ctx):
        return True
    names = target_names(the_plan, deps.kb)
    if any(says_present(f.get("data"), names) for f in state.get("findings") or []):
        return True
    # Open questions are answered by whatever the clips show, captions included.
    open_question = the_plan.question_type in {"what", "describe"} and not the_plan.targets
    return open_question and any(h.get("caption") for h in state.get("hits") or [])


def _next_strategy(state: AgentState, the_plan: Plan) -> Strategy | None:
    tried = state.get("tried") or []
    window, video = state["window"], state["video"]
    whole = window["start_s"] <= 0.0 and window["end_s"] >= video["duration_s"] - 1e-3
    # "after that" / "after she sits down" bound the search by meaning: never widen those.
    bounded = the_plan.follow_up is not None or the_plan.anchor is not None
    order: list[Strategy] = ["synonyms", "neighbours", "widen"]
    for strategy in order:
        if strategy in tried:
            continue
        if strategy in {"neighbours", "widen"} and (whole or bounded):
            continue
        if strategy == "synonyms" and not the_plan.targets:
            continue  # no class to re-query: other words would not change the detections
        return strategy
    return None


def _apply_strategy(
    strategy: Strategy, state: AgentState, the_plan: Plan, deps: AgentDeps
) -> dict[str, Any]:
    window, duration_s = state["window"], float(state["video"]["duration_s"])
    if strategy == "neighbours":
        pad_s = deps.ctx.clip_length_s
        return {
            "window": {
                "start_s": max(0.0, window["start_s"] - pad_s),
                "end_s": min(duration_s, window["end_s"] + pad_s),
            }
        }
    if strategy == "widen":
        return {"window": {"start_s": 0.0, "end_s": duration_s}}
    words = [the_plan.query]
    for target in the_plan.targets:
        item = deps.kb.get(target)
        words += [item.name, *item.synonyms[:4]]
    if not the_plan.targets:
        matches = deps.kb.match(state["question"], k=3)
        words += [m.id.replace("_", " ") for m in matches if m.score >= SYNONYM_MATCH_FLOOR]
    return {"query": " ".join(dict.fromkeys(w for w in words if w))}


def route_verify(state: AgentState) -> Literal["retrieve", "answer"]:
    """Loop back to retrieve while verify asks for another pass."""
    return "retrieve" if state.get("verdict") == "retry" else "answer"


# --- answer -----------------------------------------------------------------------------------


def answer(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Word the answer and build its evidence from records; remember the turn."""
    deps, video, the_plan = runtime.context, state["video"], _plan(state)
    _emit(runtime, "answer", "writing the answer")
    clips = [_as_dict(c) for c in deps.index.clips(video["sha256"])] if deps.index else []
    composed = compose(state, the_plan, deps, clips)
    text = composed.text
    notes = [n for n in state.get("notes") or [] if n != "no_history"]
    if notes:
        text = text + " " + " ".join(notes)
    models = model_provenance(deps.vlm)
    reply = Answer(
        answer=text,
        found=composed.found,
        evidence=composed.evidence,
        other_evidence=composed.other_evidence,
        asked=_asked(state),
        backend=models.backend,
        model_id=models.model_id,
    )
    turn = {
        "sha256": video["sha256"],
        "question": state["question"],
        "plan": state["plan"],
        "answer": text,
        "evidence": [e.model_dump() for e in composed.evidence],
    }
    return {"answer": reply.model_dump(), "history": [turn]}
