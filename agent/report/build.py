"""Behavior reports for a whole recording: timelines, totals, notable moments, explanations.

`build_report` indexes the video if needed and reads its clips and detections from the index;
`assemble_report` does the work from given records (tests pass constructed detections);
`write_report` lays the data out as HTML, Markdown or JSON (see `agent.report_render`).
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.charts import label_colors, timeline_png, totals_png
from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.events import label_key, spans_overlap
from agent.report_events import label_totals, notable_moments, report_events, timelines
from agent.report_frames import KeyFrameRenderer
from agent.report_model import (
    KINDS,
    KnowledgeEntry,
    ReportData,
    ReportEvent,
    ReportVideo,
    Segment,
    UncheckedClass,
)
from agent.report_narrative import write_narratives
from agent.report_provenance import provenance
from agent.report_render import write_report
from agent.state import Clip, Detection, VideoInfo
from agent.video import is_image
from agent.vlm.parsing import without_times

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]

__all__ = ["ReportData", "assemble_report", "build_report", "write_report"]


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
    kb = kb if kb is not None else _default_kb()
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
    kb = kb if kb is not None else _default_kb()
    progress = _timed(progress)
    events = report_events(
        detections,
        info.duration_s,
        ctx,
        name_of=lambda label: _name(kb, label),
        kb_id_of=lambda label: _kb_id(kb, label),
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
        knowledge=_knowledge(kb, events),
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


# --- knowledge base ---------------------------------------------------------------------


def not_checkable(kb: Any, ctx: Context, vlm: Any = None) -> list[UncheckedClass]:
    """Every class the offline perception rules cannot check (`agent.capabilities`), by kind.

    With a VLM loaded, such a class can still appear in the report, but only where the model's
    clip descriptions name it; the reason says so.
    """
    from agent.capabilities import capability, installed_tasks

    if kb is None or not hasattr(kb, "ids"):
        return []
    tasks = installed_tasks(ctx)
    unchecked = []
    for class_id in kb.ids():
        item = kb.get(class_id)
        if not hasattr(item, "perception"):
            continue  # a knowledge base without perception specs says nothing either way
        found = capability(item, ctx, tasks)
        if found.checkable:
            continue
        reason = found.reason
        if vlm is not None:
            reason += "; only the vision-language model's clip descriptions can report it"
        unchecked.append(
            UncheckedClass(
                id=class_id, kind=str(item.kind), name=item.name, status=found.status, reason=reason
            )
        )
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(unchecked, key=lambda u: (order.get(u.kind, len(order)), u.id))


def _default_kb() -> Any:
    try:
        from agent.knowledge import load_knowledge_base
    except ImportError:
        log.warning("agent.knowledge is not available; the report has no class definitions")
        return None
    return load_knowledge_base()


def _lookup(kb: Any, label: str) -> Any:
    """The knowledge-base class of a label (as given, or as a snake_case id), else None."""
    if kb is None:
        return None
    for candidate in dict.fromkeys([label, label_key(label)]):
        if candidate not in kb:
            continue
        try:
            return kb.get(candidate)
        except (KeyError, BehaviorAgentError):
            continue
    return None


def _kb_id(kb: Any, label: str) -> str:
    found = _lookup(kb, label)
    return found.id if found is not None else f"label-{label_key(label) or 'unlabelled'}"


def _name(kb: Any, label: str) -> str:
    found = _lookup(kb, label)
    return getattr(found, "name", None) or label.replace("_", " ")


def _knowledge(kb: Any, events: list[ReportEvent]) -> dict[str, KnowledgeEntry]:
    """Appendix entries for every label in the report (an entry even where the KB has none)."""
    entries: dict[str, KnowledgeEntry] = {}
    for event in events:
        if event.kb_id in entries:
            continue
        found = _lookup(kb, event.label)
        entries[event.kb_id] = _entry(found) if found is not None else _missing_entry(kb, event)
    return dict(sorted(entries.items(), key=lambda item: (item[1].kind, item[0])))


def _entry(found: Any) -> KnowledgeEntry:
    return KnowledgeEntry(
        id=found.id,
        kind=str(found.kind),
        name=found.name,
        definition=_text(getattr(found, "definition", "")),
        cues=_texts(getattr(found, "cues", [])),
        action_units=found.au_text() if getattr(found, "action_units", None) else "",
        temporal=_temporal(getattr(found, "temporal", None)),
        confusions=[
            {"id": _field(c, "id"), "how_to_tell": _text(_field(c, "how_to_tell"))}
            for c in getattr(found, "confusions", []) or []
        ],
        sources=_texts(getattr(found, "sources", [])),
    )


def _missing_entry(kb: Any, event: ReportEvent) -> KnowledgeEntry:
    closest: list[str] = []
    if kb is not None and hasattr(kb, "match"):
        try:
            closest = [m.id for m in kb.match(event.label.replace("_", " "), k=3)]
        except Exception as error:  # matching is a courtesy here, never a failure
            log.warning("knowledge-base match for %r failed: %s", event.label, error)
    return KnowledgeEntry(
        id=event.kb_id,
        kind=event.kind,
        name=event.name,
        definition="This label has no curated entry in the knowledge base.",
        in_knowledge_base=False,
        closest=closest,
    )


def _temporal(temporal: Any) -> str:
    """'Quick raise …, held … (typically 0.5–3.0 s)' from the class's temporal profile."""
    if temporal is None or isinstance(temporal, str):
        return temporal or ""
    pattern = _text(getattr(temporal, "pattern", "")) or _text(temporal)
    min_s, max_s = getattr(temporal, "min_s", None), getattr(temporal, "max_s", None)
    if min_s is None:
        return pattern
    typical = f"{min_s:g}–{max_s:g} s" if max_s is not None else f"at least {min_s:g} s"
    return f"{pattern} (typically {typical})"


def _field(item: Any, name: str) -> Any:
    return item.get(name, "") if isinstance(item, dict) else getattr(item, name, "")


def _text(value: Any) -> str:
    """Knowledge-base fields as plain text (a dict or a model reads `key: value; ...`)."""
    if value is None:
        return ""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value)
    return str(value).strip()


def _texts(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str | dict) or hasattr(values, "model_dump"):
        values = [values]
    return [t for t in (_text(v) for v in values) if t]
