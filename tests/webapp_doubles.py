"""A small stand-in for the web app's service: real files and frames, scripted agent answers.

It isolates the page (events, rendering, errors, seeking) from the models: uploads are really
stored and probed, thumbnails are real frames, but the answer is scripted.
"""

import time
from pathlib import Path

import numpy as np
from PIL import Image

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.index import ClipHit
from agent.index.records import Retrieval
from agent.state import Answer, Evidence
from agent.video import probe, sample_frames
from agent.web.files import playable, web_dir
from agent.web.records import LibraryVideo, TimelineEvent, TimelineView


class FakeService:
    """Same methods as agent.web.service.WebService; the answer cites `evidence_span_s`."""

    def __init__(self, evidence_span_s: tuple[float, float] = (2.2, 7.8)) -> None:
        self.evidence_span_s = evidence_span_s
        self.library: dict[str, LibraryVideo] = {}
        self.asked: list[tuple[str, str, str]] = []

    def videos(self, ctx: Context) -> list[LibraryVideo]:
        return list(reversed(self.library.values()))

    def find(self, key: str | None, ctx: Context) -> LibraryVideo | None:
        return next((v for v in self.library.values() if key in (v.sha256, v.path, v.name)), None)

    def index(self, path: Path, ctx: Context, progress=None) -> LibraryVideo:
        info = probe(path, ctx)
        for done in range(1, 4):
            if progress is not None:
                progress({"stage": "index:perceive", "done": done, "total": 3, "message": "clip"})
            time.sleep(0.05)
        video = LibraryVideo(
            sha256=info.sha256,
            path=str(path),
            name=Path(path).name,
            duration_s=info.duration_s,
            clips=1,
            detections=2,
        )
        self.library[info.sha256] = video
        return video

    def player_file(self, video: LibraryVideo, ctx: Context) -> Path:
        return playable(Path(video.path), video.sha256, ctx)

    def search(self, video: LibraryVideo, text: str, ctx: Context) -> Retrieval:
        """One moment, the evidence span inside its clip; nothing for "fireworks"."""
        if "fireworks" in text:
            return Retrieval(query=text, closest=[("thumbs_down", 0.3)])
        start_s, end_s = self.evidence_span_s
        hit = ClipHit(
            score=0.03,
            video=video.path,
            sha256=video.sha256,
            clip_id=0,
            start_s=0.0,
            end_s=video.duration_s,
            caption="",
            text="",
            span_start_s=start_s,
            span_end_s=end_s,
            label="thumbs_up",
            why=["classes", "texts"],
        )
        return Retrieval(query=text, hits=[hit])

    def ask(self, video, question, ctx, *, thread_id, on_event=None) -> Answer:
        self.asked.append((video.sha256, question, thread_id))
        for stage, message in [("plan", "target: thumbs_up"), ("retrieve", "1 clip")]:
            if on_event is not None:
                on_event({"type": "progress", "stage": stage, "message": message})
        if "fail" in question:
            raise BehaviorAgentError("The model weights are missing: set a local directory.")
        start_s, end_s = self.evidence_span_s
        evidence = Evidence(
            video=video.path,
            start_s=start_s,
            end_s=end_s,
            kind="gesture",
            label="thumbs_up",
            confidence=0.82,
            rationale="thumb extended <up>, other fingers curled",
        )
        return Answer(answer=f"At {start_s:.1f} s she gives a thumbs up.", evidence=[evidence])

    def trace(self, thread_id: str, ctx: Context) -> list[str]:
        return ["plan: when-question about thumbs_up"]

    def thumbnail(self, video: LibraryVideo, time_s: float, ctx: Context) -> Path:
        frame = sample_frames(video.path, time_s, time_s + 1e-3, num_frames=1, ctx=ctx).frames[0]
        target = web_dir(ctx, "thumbs") / f"{video.sha256[:16]}_{round(time_s * 1000)}.jpg"
        image = Image.fromarray(np.ascontiguousarray(frame))
        image.thumbnail((360, 360))
        image.save(target)
        return target

    def timeline(self, video: LibraryVideo, ctx: Context) -> TimelineView:
        start_s, end_s = self.evidence_span_s
        event = TimelineEvent(
            kind="gesture",
            label="thumbs_up",
            name="thumbs up",
            start_s=start_s,
            end_s=end_s,
            confidence=0.8,
        )
        return TimelineView(chart_png=None, events=[event])

    def report(self, video: LibraryVideo, ctx: Context, fmt: str, progress=None) -> Path:
        out = web_dir(ctx, "reports") / f"fake.{fmt}"
        out.write_text(f"report of {video.name}", encoding="utf-8")
        return out

    def vlm(self, ctx: Context):
        if ctx.backend == "videollama3":
            raise BehaviorAgentError(f"No VideoLLaMA3 checkpoint at '{ctx.model_id}'.")
        return None
