"""What the inspect node looks at: the clips worth a closer look, and the VLM's answer on each."""

import json
import logging
from typing import Any

from langgraph.runtime import Runtime

from agent.loop import answering as say
from agent.loop.deps import AgentDeps
from agent.loop.retrieval import as_dict, overlaps
from agent.planning import Plan
from agent.state import AgentState, VideoInfo
from agent.vlm.reply_times import TimeFreeStream

log = logging.getLogger(__name__)


def labels_in(detections: list[dict[str, Any]], clip: dict[str, Any], kb: Any) -> str:
    """ "thumbs up ×2, happy" for the detections inside a clip (progress text)."""
    counts: dict[str, int] = {}
    for det in detections:
        if overlaps(det, clip):
            name = say.class_name(kb, det["label"])
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return "no target detections"
    return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items())


def clips_to_inspect(state: AgentState, deps: AgentDeps) -> list[dict[str, Any]]:
    """Clips holding target detections (most confident first), then the search hits."""
    clips = [as_dict(c) for c in deps.index.clips(state["video"]["sha256"])]
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


def ask_vlm(
    state: AgentState, deps: AgentDeps, clip: dict[str, Any], runtime: Runtime[AgentDeps]
) -> dict[str, Any]:
    from agent.video import sample_frames

    video, the_plan = state["video"], Plan.model_validate(state["plan"])
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

    # The step log (web) and stderr (CLI) show the model's words as they come, but never a
    # time it wrote: the system cites only the times it computes.
    stream = TimeFreeStream()

    def show(text: str) -> None:
        if text:
            runtime.stream_writer({"type": "token", "text": text, "clip_id": clip["clip_id"]})

    try:
        reply = deps.vlm.answer(
            state["question"],
            frames,
            VideoInfo.model_validate(video),
            snippet,
            on_token=lambda piece: show(stream.feed(piece)),
        )
    except Exception as error:  # one failing clip must not lose the others
        log.warning("VLM failed on clip %s: %s", clip["clip_id"], error)
        return {**clip, "text": "", "data": None, "error": str(error)}
    finally:
        show(stream.flush())
    data = reply.data if isinstance(reply.data, dict) else None
    return {**clip, "text": reply.text, "data": _plain(data)}


def _plain(value: Any) -> Any:
    """JSON round trip: only primitives reach the checkpointer."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None
