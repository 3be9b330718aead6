"""Model-written narratives per report segment (only with a VLM; always marked as such)."""

import logging
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import Any

from agent.context import Context
from agent.report_model import ReportData, ReportEvent, Segment
from agent.resources import load_prompt
from agent.state import VideoInfo
from agent.timefmt import format_clock, format_span
from agent.video import sample_span

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
        try:
            reply = vlm.answer(
                narrative_question(segment, events),
                sample_span(
                    Path(info.path),
                    segment.start_s,
                    segment.end_s,
                    fps=ctx.describe_fps,
                    max_frames=ctx.max_frames_per_call,
                    ctx=ctx,
                ),
                info,
                _kb_snippet(kb, events),
            )
        except Exception as error:  # one failing segment must not cost the whole report
            log.warning("narrative of clip %d failed: %s", segment.clip_id, error)
            continue
        segment.narrative = (reply.text or "").strip()
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


def narrative_question(segment: Segment, events: list[ReportEvent]) -> str:
    """The prompt `report_narrative` filled with the segment's span and evidence lines."""
    lines = [
        f"- {format_span(e.start_s, e.end_s, 1)} {e.kind} '{e.name}' "
        f"(confidence {e.confidence:.2f}){': ' + '; '.join(e.cues) if e.cues else ''}"
        for e in events
    ]
    return Template(load_prompt("report_narrative")).safe_substitute(
        start=format_clock(segment.start_s, 1),
        end=format_clock(segment.end_s, 1),
        evidence="\n".join(lines) or "- (no behavior was detected in this segment)",
    )


def _kb_snippet(kb: Any, events: list[ReportEvent]) -> str:
    if kb is None or not hasattr(kb, "prompt_snippet"):
        return ""
    ids = sorted({e.kb_id for e in events if not e.kb_id.startswith("label-")})
    return kb.prompt_snippet(ids) if ids else ""
