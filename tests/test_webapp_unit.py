"""The web app's parts without a server: rendering, step panels, upload checks, handlers.

Handlers run against `FakeService` (real files and frames, scripted answers); the real
service is exercised end to end in test_webapp_e2e.py.
"""

import re
import socket
from pathlib import Path

import gradio as gr
import pytest
from typer.testing import CliRunner

from agent.cli.app import app as cli_app
from agent.context import Context
from agent.errors import BehaviorAgentError, ConfigError, VideoError
from agent.state import Answer, Evidence
from agent.web import create_app, launch, render
from agent.web.files import check_upload_size, playable, served_dirs, store_upload
from agent.web.handlers import Handlers, new_session, user_errors
from agent.web.records import LibraryVideo, TimelineEvent
from agent.web.server import launch_options
from agent.web.steps import StepLog
from tests.synthetic import write_video
from tests.webapp_doubles import FakeService


@pytest.fixture
def ctx(home: Path) -> Context:
    return Context.from_env()


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("media") / "two scenes.mp4", [1.0, 1.5])


def _evidence(**changes) -> Evidence:
    values = dict(
        video="v.mp4",
        start_s=2.2,
        end_s=7.8,
        kind="gesture",
        label="thumbs_up",
        confidence=0.82,
        rationale="thumb <b>up</b> & fingers curled",
    )
    return Evidence(**{**values, **changes})


# --- rendering ---------------------------------------------------------------------------


def test_answer_html_has_seek_links_thumbnail_and_escaped_text(tmp_path: Path) -> None:
    answer = Answer(answer="She gives a thumbs up <now>.", evidence=[_evidence()])
    thumb = tmp_path / "t.jpg"
    page = render.answer_html(answer, {0: thumb})
    assert '<a class="ba-seek" href="#t=2.200"' in page
    assert "00:02–00:08" in page
    assert f"gradio_api/file={thumb.resolve()}" in page
    assert "thumbs up" in page and "82%" in page
    # Model and user text never becomes markup.
    assert "<b>up</b>" not in page and "&lt;b&gt;up&lt;/b&gt;" in page
    assert "&lt;now&gt;" in page


def test_answer_without_evidence_says_so() -> None:
    page = render.answer_html(Answer(answer="Nothing like that happens."), {})
    assert "No moment in the video supports it" in page
    assert "ba-seek" not in page


def test_not_found_answer_shows_other_observations_apart() -> None:
    happy = _evidence(kind="emotion", label="happy", start_s=1.5, end_s=2.0)
    reply = Answer(
        answer="I did not see sadness in 00:00.0–00:07.8, so I cannot give a time.",
        found=False,
        other_evidence=[happy],
    )
    page = render.answer_html(reply, {})
    answer_part, _, others = page.partition("Other observations (not the answer):")
    assert 'data-found="false"' in answer_part and "No moment in the video supports it" in (
        answer_part
    )
    assert "ba-seek" not in answer_part  # no moment is offered as the answer
    assert 'href="#t=1.500"' in others and "happy" in others


def test_seek_link_formats_span_and_start() -> None:
    assert render.seek_link(75.4, 80.0).endswith(">01:15–01:20</a>")
    assert 'href="#t=75.400"' in render.seek_link(75.4)


def test_tables_list_rows_or_say_empty() -> None:
    assert "library is empty" in render.library_html([])
    video = LibraryVideo(sha256="ab" * 32, path="/x/a.mp4", name="a.mp4", duration_s=61, clips=7)
    assert "a.mp4" in render.library_html([video]) and "01:01.0" in render.library_html([video])
    event = TimelineEvent(
        kind="emotion", label="happy", name="happiness", start_s=0.6, end_s=2.4, confidence=0.7
    )
    table = render.events_html([event])
    assert 'href="#t=0.600"' in table and "happiness" in table and "70%" in table
    assert "No emotion, gesture or action" in render.events_html([])


def test_user_text_is_shown_literally() -> None:
    assert render.escape_text("<img src=x> **bold** _it_") == (
        "&lt;img src=x&gt; &#42;&#42;bold&#42;&#42; &#95;it&#95;"
    )


# --- step panels -------------------------------------------------------------------------


def test_steps_become_panels_pending_then_done() -> None:
    steps = StepLog()
    steps.add({"type": "progress", "stage": "index:probe", "done": 1, "total": 1, "message": "x"})
    steps.add({"type": "progress", "stage": "index:perceive", "done": 2, "total": 4})
    steps.add({"type": "progress", "stage": "plan", "message": "planning: when?"})
    steps.add({"type": "progress", "stage": "inspect", "message": "inspecting clip 1/2"})
    steps.add({"type": "token", "text": "thumb", "clip_id": 0})
    steps.add({"type": "token", "text": "s up", "clip_id": 0})
    running = steps.messages()
    assert [m["metadata"]["title"] for m in running] == [
        "Indexing the video",
        "Plan",
        "Inspected clips",
    ]
    assert [m["metadata"]["status"] for m in running] == ["done", "done", "pending"]
    assert "perceive 2/4" in running[0]["content"]
    assert "thumbs up" in running[2]["content"]
    finished = steps.messages(finished=True)
    assert all(m["metadata"]["status"] == "done" for m in finished)
    assert all(m["metadata"]["duration"] >= 0 for m in finished)


# --- files -------------------------------------------------------------------------------


def test_upload_above_the_limit_is_refused_with_the_fix(tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (3 * 2**20))
    with pytest.raises(
        VideoError,
        match=r"big.mp4 is 3 MB, above the upload limit of 2 MB.*"
        r"BEHAVIOR_AGENT_MAX_UPLOAD_MB=4",
    ):
        check_upload_size(big, Context(home=tmp_path, max_upload_mb=2))


def test_text_file_named_mp4_is_refused_readably(ctx: Context, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError) as caught:
        store_upload(fake, ctx)
    assert "notes.mp4" in str(caught.value) and "Traceback" not in str(caught.value)
    assert not any((ctx.home / "uploads").rglob("*.mp4"))


def test_upload_is_stored_by_hash_and_served(ctx: Context, clip_mp4: Path) -> None:
    stored = store_upload(clip_mp4, ctx)
    assert stored.read_bytes() == clip_mp4.read_bytes()
    assert stored.name == "two_scenes.mp4" and len(stored.parent.name) == 16
    assert store_upload(clip_mp4, ctx) == stored  # the same file again: no second copy
    assert stored.resolve().is_relative_to(served_dirs(ctx)[0])
    assert all(d.is_relative_to(ctx.home.resolve()) for d in served_dirs(ctx))
    assert playable(stored, "f" * 64, ctx) == stored


def test_video_outside_the_served_folders_is_linked_and_avi_converted(
    ctx: Context, clip_mp4: Path, tmp_path: Path
) -> None:
    linked = playable(clip_mp4, "a" * 64, ctx)
    assert linked.parent == ctx.home / "web" / "media"
    assert linked.read_bytes() == clip_mp4.read_bytes()
    avi = write_video(tmp_path / "clip.avi", [1.0], codec="XVID")
    converted = playable(avi, "b" * 64, ctx)
    assert converted.suffix == ".webm" and converted.stat().st_size > 1000


# --- handlers ------------------------------------------------------------------------------


@pytest.fixture
def handlers(ctx: Context) -> Handlers:
    return Handlers(ctx, FakeService())


def _index(handlers: Handlers, video: Path) -> dict:
    *_, summary = user_errors(handlers.index)(str(video), new_session(), progress=lambda *a, **k: 0)
    return summary


def test_index_stores_and_summarises(handlers: Handlers, clip_mp4: Path) -> None:
    summary = _index(handlers, clip_mp4)
    assert len(summary["video"]) == 64 and summary["name"] == "two_scenes.mp4"
    assert "path" not in summary  # Gradio would treat such a dict as a file
    assert Path(summary["file"]).is_relative_to(handlers.ctx.home)


def test_ask_streams_steps_then_answer_with_evidence(handlers: Handlers, clip_mp4: Path) -> None:
    sha = _index(handlers, clip_mp4)["video"]
    session = new_session()
    updates = list(user_errors(handlers.ask)("When does she give a thumbs up?", sha, session))
    assert len(updates) >= 3
    first_chat = updates[0][0]
    assert first_chat[0] == {"role": "user", "content": "When does she give a thumbs up?"}
    chat, cleared, answer, session = updates[-1]
    assert cleared == ""
    assert answer["evidence"][0]["start_s"] == 2.2
    assert [m["metadata"]["status"] for m in chat if m.get("metadata")] == ["done", "done"]
    assert 'href="#t=2.200"' in chat[-1]["content"] and "<img" in chat[-1]["content"]
    # A follow-up continues the same agent thread and conversation; a new session does not.
    *_, followed = list(handlers.ask("And after that?", sha, session))[-1]
    list(handlers.ask("When?", sha, new_session()))
    threads = [t for _, _, t in handlers.service.asked]
    assert threads[0] == threads[1] != threads[2]
    assert len(followed["chats"][sha]) > len(chat)


def test_search_lists_moments_that_play_their_span(handlers: Handlers, clip_mp4: Path) -> None:
    sha = _index(handlers, clip_mp4)["video"]
    page = user_errors(handlers.search)("thumbs up", sha, new_session())
    # The link plays the span of the evidence (2.2 s), not the start of its clip (0 s).
    assert 'href="#t=2.200"' in page and "thumbs up" in page and "classes" in page
    assert 'href="#t=0.000"' not in page
    nothing = user_errors(handlers.search)("fireworks", sha, new_session())
    assert "No matching moment" in nothing and "Closest seen: thumbs down" in nothing
    with pytest.raises(gr.Error, match="Type what to look for"):
        user_errors(handlers.search)(" ", sha, new_session())


def test_agent_errors_show_as_readable_messages(handlers: Handlers, clip_mp4: Path) -> None:
    sha = _index(handlers, clip_mp4)["video"]
    with pytest.raises(gr.Error, match="model weights are missing") as caught:
        list(user_errors(handlers.ask)("please fail", sha, new_session()))
    assert "Traceback" not in str(caught.value)
    with pytest.raises(gr.Error, match="No video selected"):
        list(user_errors(handlers.ask)("When?", None, new_session()))
    with pytest.raises(gr.Error, match="Type a question"):
        list(user_errors(handlers.ask)("  ", sha, new_session()))


def test_unexpected_errors_become_one_line() -> None:
    def broken() -> None:
        raise KeyError("clip 7")

    with pytest.raises(gr.Error, match=r"Internal error \(KeyError: 'clip 7'\)"):
        user_errors(broken)()

    def refused() -> None:
        raise BehaviorAgentError("Set BEHAVIOR_AGENT_MODEL_ID to a local folder.")

    with pytest.raises(gr.Error) as caught:
        user_errors(refused)()
    assert caught.value.message == "Set BEHAVIOR_AGENT_MODEL_ID to a local folder."


def test_settings_map_onto_context_and_bad_values_are_explained(handlers: Handlers) -> None:
    status, session = handlers.apply_settings(
        "videollama3", "/models/vl3", "8bit", 4.0, 5.0, 8.0, new_session()
    )
    ctx = handlers.ctx_for(session)
    assert (ctx.backend, ctx.model_id, ctx.quantization) == ("videollama3", "/models/vl3", "8bit")
    assert (ctx.sample_fps, ctx.clip_length_s, ctx.top_k) == (4.0, 5.0, 8)
    assert "videollama3" in status and "k=8" in status
    status, kept = handlers.apply_settings("perception", "x", "auto", 0.0, 5.0, 5, session)
    assert "Frame rates must be positive" in status and kept["settings"] == session["settings"]
    with pytest.raises(gr.Error, match="No VideoLLaMA3 checkpoint at '/models/vl3'"):
        user_errors(handlers.check_model)(session)


def test_new_conversation_forgets_the_thread(handlers: Handlers, clip_mp4: Path) -> None:
    sha = _index(handlers, clip_mp4)["video"]
    *_, session = list(handlers.ask("When?", sha, new_session()))[-1]
    chat, session = handlers.new_conversation(sha, session)
    assert chat == [] and sha not in session["threads"]


def test_serve_command_is_registered() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0
    assert re.search(r"--host", result.output) and re.search(r"--port", result.output)


def test_app_exposes_named_api_events_with_a_shared_model_queue(ctx: Context) -> None:
    ctx = ctx.replace(max_concurrent_jobs=2)
    demo = create_app(ctx, FakeService())
    named = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert set(named) == {"index", "ask", "search", "report"}
    for name in ("index", "ask", "report"):  # search needs no model beyond the embedder
        assert (named[name].concurrency_limit, named[name].concurrency_id) == (2, "model")
    options = launch_options(ctx)
    assert options["max_file_size"] == ctx.max_upload_mb * 2**20
    assert all(Path(p).is_relative_to(ctx.home.resolve()) for p in options["allowed_paths"])
    assert "ba-player" in options["head"] and "currentTime" in options["head"]


def test_missing_weights_are_reported_readably(ctx: Context) -> None:
    from agent.web.service import WebService

    handlers = Handlers(ctx, WebService())
    _, session = handlers.apply_settings(
        "videollama3", str(ctx.home / "no-such-model"), "auto", 2.0, 10.0, 5, new_session()
    )
    with pytest.raises(gr.Error) as caught:
        user_errors(handlers.check_model)(session)
    assert (
        "no-such-model" in caught.value.message
        and "BEHAVIOR_AGENT_MODEL_ID" in caught.value.message
    )


def test_report_offers_html_and_json(handlers: Handlers, clip_mp4: Path) -> None:
    sha = _index(handlers, clip_mp4)["video"]
    path, status = handlers.report(sha, "json", new_session(), progress=lambda *a, **k: None)
    assert Path(path).suffix == ".json" and "ready" in status
    with pytest.raises(gr.Error, match="--format md"):
        user_errors(handlers.report)(sha, "md", new_session(), progress=lambda *a, **k: None)


def test_a_busy_port_is_a_readable_error(ctx: Context) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*--port"):
            launch(ctx, port=port, service=FakeService(), block=False)
