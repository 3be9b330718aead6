"""Onset refinement: the first event's start looked at again with perception at `refine_fps`."""

from typing import Any

from langgraph.runtime import Runtime

from agent.events import label_key
from agent.loop.deps import AgentDeps, emit_progress
from agent.planning import Plan
from agent.state import AgentState, VideoInfo

# Re-perceive this long before an onset (one coarse sampling step plus a margin) and after it.
REFINE_BEFORE_PAD_S = 0.1
REFINE_AFTER_S = 0.5
# ... and on into the detection, up to its end but at most this far past its start: a class
# must be held for its minimum duration (up to 2 s for some signs), and a closer look that
# stops half a second in would cut the run short and drop it.
REFINE_MAX_AFTER_S = 2.5


def refine_onset(
    state: AgentState, deps: AgentDeps, runtime: Runtime[AgentDeps]
) -> tuple[list[dict[str, Any]], str] | None:
    """Look closer at the first event's start with perception at `refine_fps`.

    The index samples at `sample_fps` (0.5 s steps by default); an onset question deserves the
    0.1 s grid. The refined start is taken only if it lies between the last coarse frame
    without the behavior and the first one with it. Returns None when nothing was refined.
    """
    the_plan, detections = Plan.model_validate(state["plan"]), list(state.get("detections") or [])
    wants_onset = the_plan.onset or the_plan.occurrence == "first"
    if deps.perceiver is None or not wants_onset or not detections or not the_plan.targets:
        return None
    first = min(detections, key=lambda d: d["start_s"])
    if first["start_s"] <= 0.0 or first.get("source") == "vlm":
        return None
    step_s = 1.0 / deps.ctx.sample_fps
    lo_s = max(0.0, first["start_s"] - step_s - REFINE_BEFORE_PAD_S)
    into_s = min(float(first["end_s"]) - first["start_s"], REFINE_MAX_AFTER_S)
    hi_s = min(float(state["video"]["duration_s"]), first["start_s"] + max(REFINE_AFTER_S, into_s))
    emit_progress(
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
