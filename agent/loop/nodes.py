"""The agent's nodes (plan, retrieve, inspect, verify, answer) and its routers (route_*).

Nodes read the plain-data state and return updates; heavy resources come from the runtime
context (`AgentDeps`, agent.loop.deps); their helpers are in agent.loop.retrieval,
agent.loop.inspection and agent.loop.onset. Progress and VLM tokens go to LangGraph's custom
stream as dicts:
`{"type": "progress", "stage", "message", "done", "total"}` and `{"type": "token", "text"}`.
"""

import json
import logging
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.events import clamp_time, label_key
from agent.loop import answering as say
from agent.loop.checkable import asked_classes
from agent.loop.composing import compose, past_end, state_events, target_names, video_turns
from agent.loop.deps import AgentDeps, emit_progress
from agent.loop.inspection import ask_vlm, clips_to_inspect, labels_in
from agent.loop.onset import refine_onset
from agent.loop.retrieval import (
    anchor_window,
    as_dict,
    hit_dict,
    only_subject,
    overlaps,
    wanted_labels,
)
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


def _plan(state: AgentState) -> Plan:
    return Plan.model_validate(state["plan"])


# --- plan -------------------------------------------------------------------------------------


def plan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Understand the question: rules first, then (with a VLM) a validated refinement."""
    deps, video, question = runtime.context, state["video"], state["question"]
    emit_progress(runtime, "plan", f"planning: {question}")
    the_plan = plan_question(question, deps.kb, video["duration_s"], deps.ctx)
    notes: list[str] = []
    trace = [f"rules: {the_plan.question_type}, targets {the_plan.targets or 'none'}"]
    if the_plan.follow_up is not None:
        the_plan, note = _resolve_follow_up(the_plan, video_turns(state), video["duration_s"])
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


def _resolve_follow_up(
    the_plan: Plan, history: list[dict[str, Any]], duration_s: float
) -> tuple[Plan, str]:
    """Ground "and after that?" / "how long did it last?" in the previous answer's evidence
    (`history`: this video's turns), its times clamped to the video."""
    previous = next((t for t in reversed(history) if t.get("evidence")), None)
    if previous is None:
        return the_plan, "no_history"
    focus = previous["evidence"][0]
    start_s, end_s = (clamp_time(focus[key], duration_s) for key in ("start_s", "end_s"))
    before = Plan.model_validate(previous["plan"])
    if the_plan.follow_up == "after_that":
        update = {"start_s": end_s, "end_s": None, "kinds": [], "targets": []}
    elif the_plan.follow_up == "before_that":
        update = {"start_s": 0.0, "end_s": start_s, "kinds": [], "targets": []}
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
    emit_progress(
        runtime,
        "retrieve",
        f"retrieving (pass {step} of {deps.ctx.max_agent_steps})",
        step,
        deps.ctx.max_agent_steps,
    )
    all_detections = [as_dict(d) for d in deps.index.detections(video["sha256"])]
    if step == 1 and the_plan.anchor is not None:
        window, note = anchor_window(the_plan, window, all_detections, deps.kb, video)
        notes += [note] if note else []
    labels = wanted_labels(the_plan, deps.kb, _unchecked_ids(state))
    # A behavior that names no class (asked of a VLM) is not any detected class.
    names_none = not labels and the_plan.unmatched() is not None
    detections = [
        d
        for d in all_detections
        if not names_none
        and (not labels or label_key(d["label"]) in labels)
        and overlaps(d, window)
    ]
    detections, note = only_subject(detections, the_plan)
    if note and note not in notes:
        notes.append(note)
    hits = _search(deps, state.get("query") or the_plan.query, the_plan, video, window)
    hit_dicts = [hit_dict(h) for h in hits]
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


def _search(deps: AgentDeps, query: str, the_plan: Plan, video, window) -> list[Any]:
    """A question that names classes gets the moments of those classes (hybrid search: none
    when nothing seen matches); an open one ("what happens?") the clips whose texts read
    closest to it, for the model to look at and the captions to answer from."""
    where = {"video": video["sha256"], "start_s": window["start_s"], "end_s": window["end_s"]}
    if not the_plan.targets:
        return deps.index.search(query, deps.ctx.top_k, **where)
    return deps.index.retrieve(query, deps.ctx.top_k, kb=deps.kb, **where).hits


# --- inspect ----------------------------------------------------------------------------------


def inspect(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Look closer at the best clips: the VLM's answer on frames re-sampled at inspect_fps."""
    deps, video = runtime.context, state["video"]
    clips = clips_to_inspect(state, deps)
    findings = list(state.get("findings") or [])
    seen = {f["clip_id"] for f in findings}
    for number, clip in enumerate(clips, start=1):
        seen_here = labels_in(state.get("detections") or [], clip, deps.kb)
        emit_progress(
            runtime,
            "inspect",
            f"inspecting clip {number}/{len(clips)} "
            f"({say.span(clip['start_s'], clip['end_s'], video['duration_s'])}): {seen_here}",
            number,
            len(clips),
        )
        if deps.vlm is None or clip["clip_id"] in seen:
            continue
        findings.append(ask_vlm(state, deps, clip, runtime))
    line = f"inspected {len(clips)} clip(s)" + (" with the VLM" if deps.vlm else "")
    update: dict[str, Any] = {"findings": findings}
    refined = refine_onset(state, deps, runtime)
    if refined is not None:
        update["detections"], note = refined
        line += f"; {note}"
    return {**update, "trace": [*state.get("trace", []), line]}


# --- verify -----------------------------------------------------------------------------------


def verify(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Is the answer supported? If not, pick the next way to look again, within the budget."""
    deps, the_plan = runtime.context, _plan(state)
    trace = list(state.get("trace", []))
    if _supported(state, the_plan, deps):
        emit_progress(runtime, "verify", "evidence found")
        return {"verdict": "answer", "reason": "supported", "trace": [*trace, "verify: supported"]}
    if state.get("step", 0) >= deps.ctx.max_agent_steps:
        emit_progress(runtime, "verify", "step budget spent")
        return {"verdict": "answer", "reason": "budget", "trace": [*trace, "verify: budget spent"]}
    strategy = _next_strategy(state, the_plan)
    if strategy is None:
        return {"verdict": "answer", "reason": "exhausted", "trace": [*trace, "verify: no more"]}
    update = _apply_strategy(strategy, state, the_plan, deps)
    emit_progress(runtime, "verify", f"not found yet; trying again ({strategy})")
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
    emit_progress(runtime, "answer", "writing the answer")
    clips = [as_dict(c) for c in deps.index.clips(video["sha256"])] if deps.index else []
    composed = compose(state, the_plan, deps, clips)
    text = composed.text
    notes = [n for n in state.get("notes") or [] if n != "no_history"]
    if notes:
        text = text + " " + " ".join(notes)
    models = model_provenance(deps.vlm, deps.ctx)
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
