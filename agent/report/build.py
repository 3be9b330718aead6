"""Report data for one recording: events, timelines, totals, notable moments, charts, key frames.

`build_report` indexes the video if needed and reads its clips and detections from the index;
`assemble_report` does the work from given records (tests pass constructed detections).
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.events import spans_overlap
from agent.report.charts import label_colors, timeline_png, totals_png
from agent.report.events import label_totals, notable_moments, report_events, timelines
from agent.report.explanations import (
    class_name,
    default_kb,
    knowledge_entries,
    label_kb_id,
    not_checkable,
)
from agent.report.frames import KeyFrameRenderer
from agent.report.model import ReportData, ReportEvent, ReportVideo, Segment
from agent.report.narrative import write_narratives
from agent.report.provenance import provenance
from agent.state import Clip, Detection, VideoInfo
from agent.video import is_image
from agent.vlm.reply_times import without_times

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


def build_report(
    video: str | Path,
    ctx: Context | None = None,
    *,
    vlm: Any = None,
    progress: Progress | None = None,
    kb: Any = None,
    index: Any = None,
    **index_options: Any,
) -> ReportData:
    """The report of one recording, indexing it first when needed (a no-op when indexed).

    `index_options` (perceiver, embedder, ...) go to `index_video`; `index` is an open
    `ClipIndex` to use (one is opened on `ctx.home` otherwise).
    """
    from agent.index import ClipIndex
    from agent.indexing import index_video

    ctx = ctx or Context.from_env()
    path = Path(video).expanduser()
    kb = kb if kb is not None else default_kb()
    library = index if index is not None else ClipIndex(ctx)
    try:
        record = index_video(
            path, ctx, vlm=vlm, kb=kb, progress=progress, index=library, **index_options
        )
        clips = library.clips(record.sha256)
        detections = library.detections(record.sha256)
    finally:
        if index is None:
            library.close()
    info = record.info(path)
    data = assemble_report(info, clips, detections, ctx, kb=kb, vlm=vlm, progress=progress)
    data.provenance.index_settings = dict(record.settings)
    if record.indexed_at:
        data.provenance.indexed_at = datetime.fromtimestamp(record.indexed_at, UTC).isoformat(
            timespec="seconds"
        )
    return data


def assemble_report(
    info: VideoInfo,
    clips: list[Clip] | list[Any],
    detections: list[Detection],
    ctx: Context,
    *,
    kb: Any = None,
    vlm: Any = None,
    progress: Progress | None = None,
    key_frames: bool = True,
) -> ReportData:
    """Report data from a video's clip records and detections (no index needed)."""
    kb = kb if kb is not None else default_kb()
    progress = _timed(progress)
    events = report_events(
        detections,
        info.duration_s,
        ctx,
        name_of=lambda label: class_name(kb, label),
        kb_id_of=lambda label: label_kb_id(kb, label),
    )
    colors = label_colors([e.label for e in events])
    data = ReportData(
        title=f"Behavior report: {Path(info.path).name}",
        video=_report_video(info),
        provenance=provenance(info, ctx, vlm),
        events=events,
        timelines=timelines(events),
        totals=label_totals(events, info.duration_s),
        notable=notable_moments(events, ctx.report_strong_confidence),
        segments=_segments(clips, events),
        knowledge=knowledge_entries(kb, events),
        not_checkable=not_checkable(kb, ctx, vlm),
        colors=colors,
    )
    _add_charts(data)
    if key_frames:
        _add_key_frames(data, Path(info.path), ctx, progress)
    if vlm is not None:
        write_narratives(data, info, ctx, vlm, kb, progress)
    return data


def _report_video(info: VideoInfo) -> ReportVideo:
    return ReportVideo(
        **info.model_dump(exclude={"path"}),
        path=str(Path(info.path).resolve()),
        name=Path(info.path).name,
        is_image=is_image(info.path),
    )


def _segments(clips: list[Any], events: list[ReportEvent]) -> list[Segment]:
    segments = []
    for clip in sorted(clips, key=lambda c: c.start_s):
        inside = [
            e.event_id
            for e in events
            if spans_overlap(e.start_s, e.end_s, float(clip.start_s), float(clip.end_s))
        ]
        # A model-written caption never cites a time: the report computes its own.
        caption = without_times(getattr(clip, "caption", "") or "")
        segments.append(
            Segment(
                clip_id=int(clip.clip_id),
                start_s=float(clip.start_s),
                end_s=float(clip.end_s),
                event_ids=inside,
                caption=caption,
            )
        )
    return segments


def _add_charts(data: ReportData) -> None:
    """A timeline (not for a still image: it has no time) and the totals bar chart."""
    if not data.video.is_image:
        data.images["timeline.png"] = timeline_png(data.events, data.video.duration_s, data.colors)
        data.charts["timeline"] = "timeline.png"
    data.images["totals.png"] = totals_png(data.totals, data.colors)
    data.charts["totals"] = "totals.png"


def _add_key_frames(data: ReportData, video: Path, ctx: Context, progress: Progress | None) -> None:
    """Key frames for the most telling events first (notable, then confident), up to the cap."""
    ranked = sorted(data.events, key=lambda e: (not e.notable, -e.peak_confidence, e.start_s))
    chosen = ranked[: ctx.report_max_key_frames]
    if len(data.events) > len(chosen):
        log.info("key frames for %d of %d events (cap)", len(chosen), len(data.events))
    with KeyFrameRenderer(video, ctx) as renderer:
        for done, event in enumerate(sorted(chosen, key=lambda e: e.start_s), start=1):
            key = f"{event.event_id}.jpg"
            data.images[key] = renderer.jpeg(event, data.colors[event.label])
            event.key_frame = key
            _emit(progress, "key_frames", done, len(chosen), f"key frame of {event.event_id}")


def _timed(progress: Progress | None) -> Progress | None:
    """The callback with `elapsed_s` (since the report started) filled in where it is None."""
    if progress is None:
        return None
    started = time.perf_counter()

    def emit(event: dict[str, Any]) -> None:
        if event.get("elapsed_s") is None:
            event = {**event, "elapsed_s": round(time.perf_counter() - started, 3)}
        progress(event)

    return emit


def _emit(progress: Progress | None, stage: str, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(
            {"stage": stage, "done": done, "total": total, "elapsed_s": None, "message": message}
        )
