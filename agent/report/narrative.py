"""Model-written narratives per report segment (only with a VLM; always marked as such).

The model gets the segment's evidence without times and is asked for none; whatever time it
writes anyway is left out of the narrative (`without_times`): the report shows the segment's
own times, computed from the clip index.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.report.model import ReportData, ReportEvent
from agent.state import VideoInfo
from agent.timefmt import format_span
from agent.video import sample_span
from agent.vlm.reply_times import mentions_time, without_times

log = logging.getLogger(__name__)


def write_narratives(
    data: ReportData,
    info: VideoInfo,
    ctx: Context,
    vlm: Any,
    kb: Any,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Fill `narrative` of the segments (those with events first, up to the cap) via the VLM."""
    with_events = [s for s in data.segments if s.event_ids]
    chosen = (with_events or data.segments)[: ctx.report_max_narratives]
    model = data.provenance.model_id
    for done, segment in enumerate(chosen, start=1):
        events = [data.event(event_id) for event_id in segment.event_ids]
        frames = sample_span(
            Path(info.path),
            segment.start_s,
            segment.end_s,
            fps=ctx.describe_fps,
            max_frames=ctx.max_frames_per_call,
            ctx=ctx,
        )
        try:
            reply = vlm.narrate(evidence_lines(events), frames, info, _kb_snippet(kb, events))
        except Exception as error:  # one failing segment must not cost the whole report
            log.warning("narrative of clip %d failed: %s", segment.clip_id, error)
            continue
        segment.narrative = narrative_text(reply, segment.clip_id)
        segment.model_written = bool(segment.narrative)
        segment.narrative_model = model
        if progress is not None:
            progress(
                {
                    "stage": "narratives",
                    "done": done,
                    "total": len(chosen),
                    "elapsed_s": None,
                    "message": f"narrative of {format_span(segment.start_s, segment.end_s)}",
                }
            )


def narrative_text(reply: Any, clip_id: int) -> str:
    """The narrative to print: the model's prose with every clause that states a time left
    out; "" (no narrative) when nothing is left."""
    text = (reply.text or "").strip()
    kept = without_times(text)
    if text and kept != " ".join(text.split()):
        log.info("narrative of clip %d: left out what stated a time (%r)", clip_id, text[:200])
    return kept


def evidence_lines(events: list[ReportEvent]) -> str:
    """The segment's events for the prompt: kind, name, confidence and cues, with no times
    (a time in the prompt invites the model to repeat or shift it)."""
    lines = []
    for event in events:
        cues = "; ".join(c for c in event.cues if not mentions_time(c))
        line = f"- {event.kind} '{event.name}' (confidence {event.confidence:.2f})"
        lines.append(f"{line}: {cues}" if cues else line)
    return "\n".join(lines) or "- (no behavior was detected in this segment)"


def _kb_snippet(kb: Any, events: list[ReportEvent]) -> str:
    if kb is None or not hasattr(kb, "prompt_snippet"):
        return ""
    ids = sorted({e.kb_id for e in events if not e.kb_id.startswith("label-")})
    return kb.prompt_snippet(ids) if ids else ""
