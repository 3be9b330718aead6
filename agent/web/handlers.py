"""What the web app's events do: index an upload, answer a question, draw a timeline, write a
report, apply settings. Plain functions of component values, so tests can call them directly.

Every handler turns a `BehaviorAgentError` into a `gr.Error` with the same text (shown in the
page, no traceback); any other exception is logged with its traceback and shown as one line.
"""

import copy
import functools
import inspect
import logging
import queue
import threading
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.state import Answer
from agent.video import is_image
from agent.web import render
from agent.web.files import store_upload
from agent.web.records import LibraryVideo
from agent.web.steps import StepLog

log = logging.getLogger(__name__)

# Settings a browser session may change, as Context field names.
SETTING_FIELDS = ("backend", "model_id", "quantization", "sample_fps", "clip_length_s", "top_k")
# Evidence cards that get a thumbnail (the rest still show times and rationale).
MAX_THUMBNAILS = 6
_DONE = object()
# Captions of the indexing and report stages under the progress bar.
STAGE_TITLES = {
    "probe": "Reading the video",
    "segment": "Finding shots and clips",
    "perceive": "Perceiving",
    "describe": "Describing clips",
    "embed": "Embedding",
    "store": "Saving to the library",
    "done": "Done",
    "key_frames": "Drawing key frames",
    "narratives": "Writing summaries",
}


def new_session() -> dict[str, Any]:
    """A browser session's state: chat and agent thread per video, settings overrides."""
    return {"threads": {}, "chats": {}, "settings": {}}


def user_errors(fn):
    """Show user errors in the page as readable messages, never as a traceback."""

    def convert(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, BehaviorAgentError):
            return gr.Error(str(error), duration=None, print_exception=False)
        log.exception("internal error in %s", fn.__name__)
        return gr.Error(
            f"Internal error ({type(error).__name__}: {error}). The server log has the details; "
            "please report it.",
            duration=None,
        )

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:
                raise convert(error) from None

        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            raise convert(error) from None

    return plain


class Handlers:
    """The event functions, bound to the server's base Context and a service."""

    def __init__(self, ctx: Context, service: Any) -> None:
        self.ctx = ctx
        self.service = service

    def ctx_for(self, session: dict[str, Any] | None) -> Context:
        """The server's Context with this session's settings applied."""
        return self.ctx.replace(**((session or {}).get("settings") or {}))

    def video_for(self, key: str | None, ctx: Context) -> LibraryVideo:
        video = self.service.find(key, ctx)
        if video is None:
            if key:
                raise gr.Error(f"'{key}' is not in the library. Upload it in the Library tab.")
            raise gr.Error("No video selected: upload one in the Library tab or pick one above.")
        return video

    # --- library ----------------------------------------------------------------------------

    def load(self, session: dict[str, Any]) -> tuple:
        """Page load: the library, and the newest video selected."""
        videos = self.service.videos(self.ctx_for(session))
        choices = [v.choice() for v in videos]
        value = videos[0].sha256 if videos else None
        return gr.Dropdown(choices=choices, value=value), render.library_html(videos)

    def index(
        self,
        upload: str | None,
        session: dict[str, Any],
        progress=gr.Progress(),  # noqa: B008 (Gradio's documented way to get a progress bar)
    ) -> tuple:
        """Check, store and index an uploaded video; select it."""
        if not upload:
            raise gr.Error("Choose a video file to upload first.")
        ctx = self.ctx_for(session)
        progress(0.0, desc="Checking the upload")
        stored = store_upload(Path(upload), ctx)

        def on_progress(event: dict[str, Any]) -> None:
            done, total = event.get("done") or 0, event.get("total") or 0
            progress((done, total) if total else 0.0, desc=stage_text(event), unit="steps")

        video = self.service.index(stored, ctx, progress=on_progress)
        if not is_image(video.path):
            progress(1.0, desc="Preparing the player")
            self.service.player_file(video, ctx)
        videos = self.service.videos(ctx)
        status = (
            f"Indexed **{video.name}**: {video.clips} clips, {video.detections} detections. "
            "Ask about it in the **Ask** tab."
        )
        picker = gr.Dropdown(choices=[v.choice() for v in videos], value=video.sha256)
        return status, picker, render.library_html(videos), index_summary(video)

    def select(self, key: str | None, session: dict[str, Any]) -> tuple:
        """A video was picked: player, facts line and that video's conversation."""
        ctx = self.ctx_for(session)
        video = self.service.find(key, ctx) if key else None
        if video is None:
            return None, render.video_facts(None), []
        # A still image has nothing to play; its evidence thumbnails show it.
        player = None if is_image(video.path) else str(self.service.player_file(video, ctx))
        return player, render.video_facts(video), session["chats"].get(video.sha256, [])

    # --- questions ----------------------------------------------------------------------------

    def ask(self, question: str, video: str | None, session: dict[str, Any]):
        """Answer a question about the selected video, streaming the agent's steps."""
        question = (question or "").strip()
        if not question:
            raise gr.Error("Type a question, e.g. 'When does she give a thumbs up?'")
        ctx = self.ctx_for(session)
        video = self.video_for(video, ctx)
        session = copy.deepcopy(session)
        thread_id = session["threads"].setdefault(video.sha256, f"web-{uuid.uuid4().hex[:16]}")
        chat = session["chats"].get(video.sha256, []) + [
            {"role": "user", "content": render.escape_text(question)}
        ]
        steps = StepLog()
        yield chat + steps.messages(), "", None, session
        for item in self._run_agent(video, question, ctx, thread_id):
            if isinstance(item, Answer):
                answer = item
                break
            steps.add(item)
            yield chat + steps.messages(), "", None, session
        self._add_trace(steps, thread_id, ctx)
        reply = {"role": "assistant", "content": self.answer_html(video, answer, ctx)}
        session["chats"][video.sha256] = chat + steps.messages(finished=True) + [reply]
        yield session["chats"][video.sha256], "", answer.model_dump(), session

    def search(self, text: str, video: str | None, session: dict[str, Any]) -> str:
        """The moments of the selected video that match `text`, each a link that plays it."""
        text = (text or "").strip()
        if not text:
            raise gr.Error("Type what to look for, e.g. 'smiling' or 'thumbs up'.")
        ctx = self.ctx_for(session)
        return render.search_html(self.service.search(self.video_for(video, ctx), text, ctx))

    def _run_agent(self, video: LibraryVideo, question: str, ctx: Context, thread_id: str):
        """The agent's events as they come, then its Answer (it runs in a worker thread)."""
        events: queue.Queue = queue.Queue()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["answer"] = self.service.ask(
                    video, question, ctx, thread_id=thread_id, on_event=events.put
                )
            except Exception as error:  # re-raised below, in the event's own thread
                result["error"] = error
            finally:
                events.put(_DONE)

        threading.Thread(target=work, name="ask", daemon=True).start()
        while (event := events.get()) is not _DONE:
            yield event
        if "error" in result:
            raise result["error"]
        yield result["answer"]

    def _add_trace(self, steps: StepLog, thread_id: str, ctx: Context) -> None:
        """The agent's own account of the turn (plan targets, passes, verdicts) in the panels."""
        try:
            lines = self.service.trace(thread_id, ctx)
        except Exception as error:  # the answer matters more than its trace
            log.warning("no trace for thread %s: %s", thread_id, error)
            return
        for line in lines:
            steps.note(trace_step(line), [line])

    def answer_html(self, video: LibraryVideo, answer: Answer, ctx: Context) -> str:
        thumbnails = {
            i: self.service.thumbnail(video, _key_time(e.start_s, e.end_s), ctx)
            for i, e in enumerate(answer.evidence[:MAX_THUMBNAILS])
        }
        return render.answer_html(answer, thumbnails)

    def new_conversation(self, key: str | None, session: dict[str, Any]) -> tuple:
        """Forget this video's conversation: the next question starts a new agent thread."""
        session = copy.deepcopy(session)
        video = self.service.find(key, self.ctx_for(session)) if key else None
        if video is not None:
            session["threads"].pop(video.sha256, None)
            session["chats"].pop(video.sha256, None)
        return [], session

    # --- timeline and report ---------------------------------------------------------------

    def timeline(self, key: str | None, session: dict[str, Any]) -> tuple:
        """The behavior timeline chart and event list of the selected video."""
        ctx = self.ctx_for(session)
        if not key:
            return None, render.events_html([])
        view = self.service.timeline(self.video_for(key, ctx), ctx)
        chart = str(view.chart_png) if view.chart_png else None
        return chart, render.events_html(view.events)

    def report(
        self,
        video: str | None,
        fmt: str,
        session: dict[str, Any],
        progress=gr.Progress(),  # noqa: B008 (Gradio's documented way to get a progress bar)
    ):
        """Write the report of the selected video in `fmt` (html or json) for download."""
        ctx = self.ctx_for(session)
        video = self.video_for(video, ctx)
        fmt = (fmt or "html").lower()
        # Markdown reports keep their images in files beside them: the CLI writes those.
        if fmt not in ("html", "json"):
            raise gr.Error(
                f"The web app offers html or json reports, not '{fmt}'; for Markdown run "
                "`behavior-agent report VIDEO --format md`."
            )
        progress(0.0, desc="Building the report")

        def on_progress(event: dict[str, Any]) -> None:
            done, total = event.get("done") or 0, event.get("total") or 0
            progress((done, total) if total else 0.0, desc=stage_text(event))

        path = self.service.report(video, ctx, fmt, progress=on_progress)
        size_kb = Path(path).stat().st_size / 1024
        return str(
            path
        ), f"Report of **{video.name}** ready: `{Path(path).name}` ({size_kb:,.0f} KB)."

    # --- settings ---------------------------------------------------------------------------

    def apply_settings(self, *values: Any) -> tuple:
        """Validate the Settings tab's values and keep them for this session."""
        *fields, session = values
        session = copy.deepcopy(session)
        settings = dict(zip(SETTING_FIELDS, fields, strict=True))
        settings["top_k"] = int(settings["top_k"])
        try:
            ctx = self.ctx.replace(**settings)
        except BehaviorAgentError as error:
            return f"⚠️ {error}", session
        session["settings"] = settings
        model = (
            f" · model `{ctx.model_id}` ({ctx.quantization})" if ctx.backend != "perception" else ""
        )
        return (
            f"Using **{ctx.backend}**{model} · {ctx.sample_fps:g} fps · "
            f"{ctx.clip_length_s:g} s clips · k={ctx.top_k}",
            session,
        )

    def check_model(self, session: dict[str, Any]) -> str:
        """Load the selected model now, so a missing checkpoint shows before a long job."""
        ctx = self.ctx_for(session)
        if ctx.backend == "perception":
            return "The perception backend needs no model download: it runs offline on CPU."
        model = self.service.vlm(ctx)
        load = getattr(model, "get", None)  # a LazyVLM loads on first use: make that now
        if callable(load):
            load()
        return f"Model `{ctx.model_id}` is loaded ({ctx.quantization})."


def stage_text(event: dict[str, Any]) -> str:
    """A progress event as the bar's caption: `Perceiving — 00:07 of 00:10`."""
    stage = str(event.get("stage") or "").removeprefix("index:")
    title = STAGE_TITLES.get(stage, stage.replace("_", " ").capitalize())
    message = str(event.get("message") or "").strip()
    return f"{title} — {message}" if message else title


def trace_step(line: str) -> str:
    """The panel a line of the agent's trace belongs to (by the node that wrote it)."""
    for prefix, step in (("pass", "retrieve"), ("inspect", "inspect"), ("verify", "verify")):
        if line.startswith(prefix):
            return step
    return "plan"


def index_summary(video: LibraryVideo) -> dict[str, Any]:
    """The `/index` API's JSON: the `video` value to pass to `/ask` and `/report`, and facts.

    (No key is named `path`: Gradio would take the dict for a file to transfer.)
    """
    return {
        "video": video.sha256,
        "name": video.name,
        "file": video.path,
        "duration_s": video.duration_s,
        "clips": video.clips,
        "detections": video.detections,
        "backend": video.backend,
    }


def _key_time(start_s: float, end_s: float) -> float:
    """The frame a thumbnail shows: a little into the span, where the behavior is under way."""
    return start_s + min(1.0, 0.5 * max(0.0, end_s - start_s))
