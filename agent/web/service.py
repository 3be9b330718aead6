"""The agent API as the web app uses it: library, indexing, questions, timeline, reports.

One `WebService` serves every browser session. Heavy models (the VLM) are loaded on first use
and shared; the Gradio queue bounds how many jobs use them at once. Tests can hand the UI any
object with the same methods.
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from agent.context import Context
from agent.state import Answer
from agent.web.files import playable, web_dir
from agent.web.records import LibraryVideo, TimelineEvent, TimelineView

log = logging.getLogger(__name__)

OnEvent = Callable[[dict[str, Any]], None]
ReportFormat = Literal["html", "json"]
# Long side of an evidence thumbnail in the chat (pixels).
THUMB_SIDE = 360


class WebService:
    """Thin layer over `agent.indexing`, `agent.index`, `agent.api` and `agent.report`."""

    def __init__(self) -> None:
        self._vlms: dict[tuple[str, str, str], Any] = {}
        self._vlm_lock = threading.Lock()

    # --- library ------------------------------------------------------------------------

    def agent(self, ctx: Context) -> Any:
        """The shared `AgentService` for these settings (index, knowledge base, VLM, threads)."""
        from agent.api import get_service

        return get_service(ctx, vlm=self.vlm(ctx))

    def videos(self, ctx: Context) -> list[LibraryVideo]:
        """Every fully indexed video of the library."""
        records = self.agent(ctx).index.videos()
        return [_entry(r) for r in records if r.status == "complete"]

    def find(self, key: str | None, ctx: Context) -> LibraryVideo | None:
        """The library video with this hash, path or file name (None when there is none)."""
        if not key:
            return None
        record = self.agent(ctx).index.video(key)
        if record is not None and record.status == "complete":
            return _entry(record)
        return next((v for v in self.videos(ctx) if key in (v.name, v.sha256[:12])), None)

    def index(self, path: Path, ctx: Context, progress: OnEvent | None = None) -> LibraryVideo:
        """Index a stored upload (a no-op when it is indexed with the same settings)."""
        agent = self.agent(ctx)
        info = agent.index_video(path, on_event=progress)
        record = agent.index.video(info.sha256)
        return _entry(record).model_copy(update={"path": str(path), "name": Path(path).name})

    def player_file(self, video: LibraryVideo, ctx: Context) -> Path:
        """The file the page's video player shows (served and browser-playable)."""
        return playable(Path(video.path), video.sha256, ctx)

    # --- questions ----------------------------------------------------------------------

    def ask(
        self,
        video: LibraryVideo,
        question: str,
        ctx: Context,
        *,
        thread_id: str,
        on_event: OnEvent | None = None,
    ) -> Answer:
        """The agent's answer with evidence; follow-ups share `thread_id`."""
        return self.agent(ctx).ask(video.path, question, thread_id=thread_id, on_event=on_event)

    def search(self, video: LibraryVideo, text: str, ctx: Context) -> Any:
        """The moments of one video matching `text` (`agent.index.hybrid`; a `Retrieval`)."""
        agent = self.agent(ctx)
        return agent.index.retrieve(text, ctx.top_k, kb=agent.kb, video=video.sha256)

    def trace(self, thread_id: str, ctx: Context) -> list[str]:
        """What the agent did in the last turn of a thread (plan, passes, verification)."""
        return self.agent(ctx).trace(thread_id)

    def thumbnail(self, video: LibraryVideo, time_s: float, ctx: Context) -> Path | None:
        """A JPEG of the frame at `time_s` with perception's overlay drawn (cached on disk)."""
        target = web_dir(ctx, "thumbs") / f"{video.sha256[:16]}_{round(time_s * 1000):09d}.jpg"
        if target.exists():
            return target
        try:
            frame = _overlay_frame(Path(video.path), time_s, ctx)
        except Exception as error:  # a missing thumbnail must not cost the user the answer
            log.warning("no thumbnail at %.2f s of %s: %s", time_s, video.name, error)
            return None
        image = Image.fromarray(np.ascontiguousarray(frame))
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        image.save(target, format="JPEG", quality=85)
        return target

    # --- timeline and report --------------------------------------------------------------

    def timeline(self, video: LibraryVideo, ctx: Context) -> TimelineView:
        """The report's timeline chart and merged events, without key frames (fast)."""
        from agent.report import assemble_report
        from agent.video import probe

        index = self.agent(ctx).index
        info = probe(Path(video.path), ctx)
        data = assemble_report(
            info,
            list(index.clips(video.sha256)),
            list(index.detections(video.sha256)),
            ctx,
            key_frames=False,
        )
        chart = web_dir(ctx, "charts") / f"{video.sha256[:16]}_timeline.png"
        chart.write_bytes(data.images[data.charts["timeline"]])
        events = [
            TimelineEvent(
                kind=e.kind,
                label=e.label,
                name=e.name,
                start_s=e.start_s,
                end_s=e.end_s,
                confidence=e.confidence,
                color=data.colors.get(e.label, "#888888"),
                cues=e.cues,
            )
            for e in data.events
        ]
        return TimelineView(chart_png=chart, events=events)

    def report(
        self, video: LibraryVideo, ctx: Context, fmt: ReportFormat, progress: OnEvent | None = None
    ) -> Path:
        """Write the behavior report of a video; returns the file to download."""
        from agent.report import build_report, write_report

        data = build_report(video.path, ctx, vlm=self.vlm(ctx), progress=progress)
        stem = Path(video.name).stem
        out = web_dir(ctx, "reports") / video.sha256[:16] / f"{stem}_report.{fmt}"
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_report(data, fmt, out)

    # --- models ------------------------------------------------------------------------------

    def vlm(self, ctx: Context) -> Any:
        """The VideoLLaMA3 model for `ctx` (None with the perception backend), loaded once.

        Lazy: listing the library or re-indexing a known upload does not load it; the first
        model call does.
        """
        if ctx.backend != "videollama3":
            return None
        key = (ctx.model_id, ctx.quantization, ctx.device)
        with self._vlm_lock:
            if key not in self._vlms:
                from agent.vlm import LazyVLM

                self._vlms.clear()  # one model in memory at a time
                self._vlms[key] = LazyVLM(ctx)
            return self._vlms[key]


def _entry(record: Any) -> LibraryVideo:
    """A library record (agent.index.VideoRecord) as the app lists it."""
    path = next((p for p in [record.path, *record.paths] if Path(p).is_file()), record.path)
    return LibraryVideo(
        sha256=record.sha256,
        path=str(path),
        name=Path(path).name,
        duration_s=float(record.duration_s),
        clips=record.clip_count,
        detections=record.detection_count,
        backend=str(record.settings.get("backend", "perception")),
    )


def _overlay_frame(video: Path, time_s: float, ctx: Context) -> np.ndarray:
    try:
        from agent.perception import render_overlay
    except ImportError:
        render_overlay = None
    if render_overlay is not None:
        return render_overlay(video, time_s, ctx)
    from agent.video import is_image, read_image, sample_frames

    if is_image(video):
        return read_image(video)
    return sample_frames(video, time_s, time_s + 1e-3, num_frames=1, ctx=ctx).frames[0]
