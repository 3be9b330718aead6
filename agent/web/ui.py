"""The page: a video player beside Library, Ask, Search, Timeline, Report and Settings tabs.

Public API events (for `gradio_client`): `/index` (upload → indexed video), `/ask`
(question, video → chat, answer with evidence), `/search` (query, video → moments as links
that play them) and `/report` (video, format → file).
"""

from types import SimpleNamespace
from typing import Any

import gradio as gr

from agent.context import Context
from agent.web import render
from agent.web.handlers import SETTING_FIELDS, Handlers, new_session, user_errors

EXAMPLES = [
    "When does she give a thumbs up?",
    "When does he start smiling?",
    "Which gestures does the person make?",
    "How many people are walking?",
]
VIDEO_TYPES = [".mp4", ".webm", ".mov", ".m4v", ".mkv", ".avi", ".ogv", ".jpg", ".jpeg", ".png"]
HEADER = (
    '<div id="ba-header"><h1>Behavior Agent</h1><p>Ask what a person feels, signals and does '
    "in a recording. Every answer links to the moments that support it.</p></div>"
)


def build_app(ctx: Context, service: Any) -> gr.Blocks:
    """The Blocks of the web app over `service` (see `agent.web.service.WebService`)."""
    ui = SimpleNamespace()
    with gr.Blocks(title="Behavior Agent", fill_width=True, analytics_enabled=False) as demo:
        ui.session = gr.State(new_session())
        gr.HTML(HEADER)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=380):
                _player_column(ui)
            with gr.Column(scale=7, min_width=420), gr.Tabs(elem_id="ba-tabs") as ui.tabs:
                with gr.Tab("Library", id="library"):
                    _library_tab(ui, ctx)
                with gr.Tab("Ask", id="ask"):
                    _ask_tab(ui)
                with gr.Tab("Search", id="search"):
                    _search_tab(ui)
                with gr.Tab("Timeline", id="timeline"):
                    _timeline_tab(ui)
                with gr.Tab("Report", id="report"):
                    _report_tab(ui)
                with gr.Tab("Settings", id="settings"):
                    _settings_tab(ui, ctx)
        _wire(demo, ui, Handlers(ctx, service), ctx)
    return demo


def _player_column(ui: SimpleNamespace) -> None:
    ui.picker = gr.Dropdown(
        label="Video",
        choices=[],
        value=None,
        allow_custom_value=True,
        info="Indexed recordings; upload more in the Library tab.",
        elem_id="ba-picker",
    )
    ui.player = gr.Video(
        elem_id="ba-player", show_label=False, interactive=False, height=380, buttons=["download"]
    )
    ui.facts = gr.Markdown(render.video_facts(None), elem_id="ba-facts")


def _library_tab(ui: SimpleNamespace, ctx: Context) -> None:
    ui.upload = gr.File(
        label="Upload a recording (video or image)",
        file_types=VIDEO_TYPES,
        type="filepath",
        elem_id="ba-upload",
        height=140,
    )
    ui.status = gr.Markdown(
        f"Uploads up to {ctx.max_upload_mb:,} MB are indexed right away.",
        label="Status",
        elem_id="ba-index-status",
        min_height=72,
    )
    ui.index_info = gr.JSON(visible=False, label="Indexed video")
    ui.library = gr.HTML(render.library_html([]), label="Library", elem_id="ba-library")


def _ask_tab(ui: SimpleNamespace) -> None:
    ui.chat = gr.Chatbot(
        label="Conversation",
        elem_id="ba-chat",
        show_label=False,
        height=520,
        layout="panel",
        feedback_options=None,
        buttons=["copy_all"],
        placeholder="Ask about the selected video, e.g. *When does she give a thumbs up?*",
    )
    with gr.Row(equal_height=True):
        ui.question = gr.Textbox(
            show_label=False,
            label="Question",
            placeholder="Ask a question about the video…",
            scale=8,
            elem_id="ba-question",
            submit_btn="Ask",
        )
        ui.reset = gr.Button("New conversation", scale=2, size="md")
    gr.Examples(EXAMPLES, inputs=ui.question, label="Try")
    ui.answer = gr.JSON(visible=False, label="Answer")


def _search_tab(ui: SimpleNamespace) -> None:
    ui.search_text = gr.Textbox(
        show_label=False,
        label="Search",
        placeholder="Find moments in the video, e.g. smiling, thumbs up, walking…",
        elem_id="ba-search",
        submit_btn="Search",
    )
    ui.search_hits = gr.HTML(
        '<p class="ba-muted">Each moment found is a link that plays it.</p>', elem_id="ba-hits"
    )


def _timeline_tab(ui: SimpleNamespace) -> None:
    ui.chart = gr.Image(
        show_label=False,
        interactive=False,
        type="filepath",
        elem_id="ba-chart",
        buttons=["download"],
    )
    ui.events = gr.HTML(render.events_html([]), elem_id="ba-events")


def _report_tab(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "A report of the whole recording: timelines, totals, notable moments and the "
        "knowledge-base explanation of every label."
    )
    with gr.Row():
        ui.fmt = gr.Radio(["html", "json"], value="html", label="Format", scale=3)
        ui.make = gr.Button("Generate report", variant="primary", scale=1)
    ui.report_file = gr.File(label="Download", interactive=False)
    ui.report_status = gr.Markdown(label="Report status")


def _settings_tab(ui: SimpleNamespace, ctx: Context) -> None:
    gr.Markdown(
        "Settings apply to this browser session. Changing sampling or clip length re-indexes a "
        "video the next time it is used."
    )
    backend = gr.Radio(
        ["perception", "videollama3"],
        value=ctx.backend,
        label="Backend",
        info="perception: offline landmarks on CPU · videollama3: adds a video-language model",
    )
    model_id = gr.Textbox(
        value=ctx.model_id,
        label="VideoLLaMA3 model id or local directory",
        info="A local checkpoint folder works offline.",
    )
    quantization = gr.Radio(
        ["auto", "4bit", "8bit", "none"],
        value=ctx.quantization,
        label="Quantization",
        info="auto = 4-bit on a GPU, none on CPU",
    )
    with gr.Row():
        sample_fps = gr.Slider(0.5, 10, value=ctx.sample_fps, step=0.5, label="Sampling fps")
        clip_length = gr.Slider(2, 60, value=ctx.clip_length_s, step=1, label="Clip length (s)")
        top_k = gr.Slider(1, 20, value=ctx.top_k, step=1, label="Clips per search (k)")
    ui.settings = [backend, model_id, quantization, sample_fps, clip_length, top_k]
    assert len(ui.settings) == len(SETTING_FIELDS)
    ui.settings_status = gr.Markdown(elem_id="ba-settings-status")
    ui.check = gr.Button("Check the model now", size="sm")


def _wire(demo: gr.Blocks, ui: SimpleNamespace, handlers: Handlers, ctx: Context) -> None:
    """Events; model work shares one concurrency group capped at ctx.max_concurrent_jobs."""
    model_jobs = {"concurrency_limit": ctx.max_concurrent_jobs, "concurrency_id": "model"}
    private = {"api_visibility": "private"}
    demo.load(
        user_errors(handlers.load), inputs=ui.session, outputs=[ui.picker, ui.library], **private
    )
    indexing = ui.upload.upload(
        user_errors(handlers.index),
        inputs=[ui.upload, ui.session],
        outputs=[ui.status, ui.picker, ui.library, ui.index_info],
        api_name="index",
        show_progress_on=ui.status,
        **model_jobs,
    )
    # Empty the upload box either way (it hides its file input while it holds a file); after
    # a success, go on to the Ask tab.
    indexing.failure(lambda: None, outputs=ui.upload, **private)
    indexing.success(
        lambda: (None, gr.Tabs(selected="ask")), outputs=[ui.upload, ui.tabs], **private
    )
    ui.picker.change(
        user_errors(handlers.select),
        inputs=[ui.picker, ui.session],
        outputs=[ui.player, ui.facts, ui.chat],
        **private,
    ).then(
        user_errors(handlers.timeline),
        inputs=[ui.picker, ui.session],
        outputs=[ui.chart, ui.events],
        show_progress="hidden",
        **private,
    )
    ui.question.submit(
        user_errors(handlers.ask),
        inputs=[ui.question, ui.picker, ui.session],
        outputs=[ui.chat, ui.question, ui.answer, ui.session],
        api_name="ask",
        show_progress="minimal",
        **model_jobs,
    )
    ui.search_text.submit(
        user_errors(handlers.search),
        inputs=[ui.search_text, ui.picker, ui.session],
        outputs=ui.search_hits,
        api_name="search",
        show_progress="minimal",
    )
    ui.reset.click(
        user_errors(handlers.new_conversation),
        inputs=[ui.picker, ui.session],
        outputs=[ui.chat, ui.session],
        **private,
    )
    ui.chat.clear(
        user_errors(handlers.new_conversation),
        inputs=[ui.picker, ui.session],
        outputs=[ui.chat, ui.session],
        **private,
    )
    ui.make.click(
        user_errors(handlers.report),
        inputs=[ui.picker, ui.fmt, ui.session],
        outputs=[ui.report_file, ui.report_status],
        api_name="report",
        **model_jobs,
    )
    gr.on(
        [c.change for c in ui.settings],
        user_errors(handlers.apply_settings),
        inputs=[*ui.settings, ui.session],
        outputs=[ui.settings_status, ui.session],
        **private,
    )
    ui.check.click(
        user_errors(handlers.check_model),
        inputs=ui.session,
        outputs=ui.settings_status,
        **private,
        **model_jobs,
    )
